"""``faceanim speak``: a portrait talking from a speech file (registered by the CLI's COMMAND_MODULES)."""

from __future__ import annotations

import argparse
from pathlib import Path

from faceanim.cli import non_negative, positive

SPEAK_EXAMPLES = """examples:
  faceanim speak --source portrait.jpg --audio speech.wav -o talking.mp4
  faceanim speak --source portrait.jpg --audio talk.mp3 -o a.mp4 --seed 1        # another head motion
  faceanim speak --source painting.png --audio clip.m4a -o out.mp4 --pose-amplitude 0.5 --blink-rate 20
  faceanim speak --source portrait.jpg --audio interview.mp4 -o out.mp4          # the audio track of a video
  faceanim speak --source portrait.jpg --audio speech.flac -o out.mp4 --audio-encoder ./wav2vec2-base

Reads wav, mp3, m4a/AAC, ogg/Opus, flac and the audio of any video. Silence keeps the mouth closed.
"""


def register(add, renderers: list[str]) -> None:
    """Add ``speak`` to the CLI."""
    from faceanim.render.registry import DEFAULT_HELP, default_renderer

    p = add("speak", "make a portrait talk from speech (lip sync, natural head motion and blinks)", SPEAK_EXAMPLES)
    p.add_argument("--source", required=True, metavar="IMAGE", help="the portrait")
    p.add_argument("--audio", required=True, metavar="FILE", help="speech: an audio file or a video's audio track")
    p.add_argument("-o", "--output", required=True, metavar="VIDEO", help="output video (.mp4, .mov, .mkv)")
    s = p.add_argument_group("style")
    s.add_argument("--seed", type=int, default=0, help="head motion and blinks differ per seed (default: 0)")
    s.add_argument("--pose-amplitude", type=non_negative, default=1.0, metavar="X",
                   help="× head motion (0 = still head; default: 1)")
    s.add_argument("--blink-rate", type=non_negative, default=15.0, metavar="N",
                   help="blinks per minute (0 = none; default: 15)")
    s.add_argument("--expression-intensity", type=non_negative, default=1.0, metavar="X",
                   help="× mouth and eye/brow motion (default: 1)")
    s.add_argument("--temperature", type=non_negative, default=1.0, metavar="X",
                   help="spread of the sampled motion (0 = the most likely; default: 1)")
    r = p.add_argument_group("rendering")
    r.add_argument("--renderer", choices=renderers, default=None,
                   help=f"how frames are made (default here: {default_renderer()}; {DEFAULT_HELP})")
    r.add_argument("--face", type=int, default=0, metavar="N", help="which source face: 0 = largest (default)")
    r.add_argument("--crop-size", type=int, choices=(256, 512), default=256, help="face crop size (default: 256)")
    r.add_argument("--crop-only", action="store_true", help="write the aligned face crop instead of the full frame")
    m = p.add_argument_group("model")
    m.add_argument("--weights", default=None, metavar="FILE",
                   help="audio-to-motion weights (default: weights/audio2motion.safetensors)")
    m.add_argument("--audio-encoder", default=None, metavar="PATH",
                   help="a local wav2vec2 / HuBERT / Whisper checkpoint folder (config.json + model.safetensors); "
                        "needs audio-to-motion weights trained on its features (train config: audio_encoder)")
    m.add_argument("--vad", choices=("energy", "silero"), default="energy",
                   help="voice activity (silence closes the mouth): energy, or silero-vad if installed")
    o = p.add_argument_group("output")
    o.add_argument("--max-seconds", type=positive, default=None, metavar="S", help="stop after S seconds of audio")
    o.add_argument("--no-provenance", action="store_true", help="do not mark the output as synthetic")
    p.set_defaults(func=cmd_speak)


def cmd_speak(args: argparse.Namespace) -> int:
    """Run ``faceanim speak``; returns the exit code."""
    from faceanim.errors import MediaError
    from faceanim.face.crop import CropConfig
    from faceanim.pipeline.animator import AnimatorConfig
    from faceanim.pipeline.speak import SpeakOptions, SpeechStyle, speak_file

    for what, path in (("source", args.source), ("audio", args.audio)):
        if not Path(path).is_file():
            raise MediaError(f"no such {what} file", path=path)
    options = SpeakOptions(
        animator=AnimatorConfig(renderer=args.renderer, crop=CropConfig(size=args.crop_size), crop_only=args.crop_only),
        style=SpeechStyle(pose_amplitude=args.pose_amplitude, blink_rate=args.blink_rate,
                          expression_intensity=args.expression_intensity, seed=args.seed,
                          temperature=args.temperature),
        weights=args.weights,
        audio_encoder=args.audio_encoder,
        vad=args.vad,
        face_index=args.face,
        provenance=not args.no_provenance,
        max_seconds=args.max_seconds,
        progress=args.progress,
    )
    report = speak_file(args.source, args.audio, args.output, options)
    print(f"wrote {report.output} ({report.frames} frames, {report.seconds:.1f} s, "
          f"speech in {report.speech_share:.0%} of frames)")
    return 0
