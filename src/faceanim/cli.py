"""The ``faceanim`` command line: parse, call ``faceanim.pipeline``, print. No animation logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

# Before anything imports mediapipe: keep its C++ (glog/absl) and TF-Lite logs off the terminal.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROG = "faceanim"

TEMPLATE_DESCRIPTIONS = {
    "nod": "head nods up and down",
    "turn": "head turns left and right with a slight roll",
    "blink": "eyes blink every 1.5 s",
    "smile": "a smile that builds up and fades",
    "talk": "mouth opens and closes in a speech-like rhythm",
    "demo": "all of the above at once",
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _silence_third_party_logs(verbose: bool) -> None:
    warnings.filterwarnings("ignore", category=UserWarning, module=r"google\.protobuf.*")
    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype\(\) is deprecated.*")
    if not verbose:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.ERROR)
        absl_logging.set_stderrthreshold("info" if verbose else "error")
    except ImportError:  # pragma: no cover - absl comes with mediapipe
        pass


# mediapipe 0.10.14 logs through absl (never initialised, so everything goes to stderr) and TF Lite's own
# logger; neither honours an environment variable. These native lines are dropped at the file-descriptor level.
_NATIVE_NOISE = re.compile(
    rb"^(INFO: Created TensorFlow Lite|INFO: Initialized TensorFlow Lite|"
    rb"WARNING: All log messages before absl::InitializeLog|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\])"
)


def _pump(read_fd: int, write_fd: int) -> None:
    """Copy native stderr lines from the pipe to the real stderr, minus mediapipe/TF-Lite noise."""
    buf = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not _NATIVE_NOISE.match(line))
            if kept:
                os.write(write_fd, kept)
        if buf and not _NATIVE_NOISE.match(buf):
            os.write(write_fd, buf)
    os.close(read_fd)


@contextlib.contextmanager
def _native_stderr_filtered(enabled: bool) -> Iterator[None]:
    """Route file descriptor 2 through :func:`_pump` while Python's ``sys.stderr`` writes straight to the
    terminal. Only when ``sys.stderr`` really is fd 2 (not under pytest's capture or an embedding app)."""
    try:
        real = enabled and sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    py_stderr = sys.stderr
    py_stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(os.dup(saved), "w"), encoding=py_stderr.encoding, errors="backslashreplace", write_through=True
    )
    thread = threading.Thread(target=_pump, args=(read_fd, saved), name="faceanim-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
            sys.stderr.close()
        sys.stderr = py_stderr
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump drains it and stops
        thread.join(timeout=2.0)
        os.close(saved)


# ---------------------------------------------------------------------------------------------- arguments


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def ratio(text: str) -> float:
    value = non_negative(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected an open ratio between 0 and 1, got {text}")
    return value


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or abs(value) == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _face(text: str) -> int | str:
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a face number (0 = largest) or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a face number >= 0 or 'all', got {value}")
    return value


def _common() -> argparse.ArgumentParser:
    """--quiet/--verbose, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("general")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log progress details and show tracebacks on errors")
    return p


def add_animation_options(p: argparse.ArgumentParser, renderers: list[str]) -> None:
    from faceanim.render.registry import DEFAULT_HELP, default_renderer

    r = p.add_argument_group("rendering")
    r.add_argument("--renderer", choices=renderers, default=None,
                   help=f"how frames are made (default here: {default_renderer()}; {DEFAULT_HELP})")
    r.add_argument("--face", type=_face, default=0, metavar="N|all",
                   help="which source face to animate: 0 = largest (default), 1 = next, … or 'all'")
    r.add_argument("--crop-only", action="store_true", help="write the aligned face crop instead of the full frame")
    r.add_argument("--crop-size", type=int, choices=(256, 512), default=256, help="face crop size (default: 256)")
    r.add_argument("--feather", type=ratio, default=None, metavar="X",
                   help="soft edge of the pasted face, fraction of the crop side (default: 0.12)")

    m = p.add_argument_group("motion")
    m.add_argument("--mode", choices=("relative", "absolute"), default="relative",
                   help="relative: apply the driver's changes from its first frame (default); "
                        "absolute: copy the driver's pose and expression")
    m.add_argument("--no-pose", action="store_true", help="keep the source's head pose")
    m.add_argument("--no-expression", action="store_true", help="keep the source's expression")
    m.add_argument("--expression-scale", type=non_negative, default=1.0, metavar="X",
                   help="exaggerate (>1) or soften (<1) expression changes (default: 1)")
    m.add_argument("--eyes-open", type=ratio, default=None, metavar="X",
                   help="force both eyes' open ratio (about 0.3 open, 0 closed)")
    m.add_argument("--left-eye-open", type=ratio, default=None, metavar="X", help="force the left eye's open ratio")
    m.add_argument("--right-eye-open", type=ratio, default=None, metavar="X",
                   help="force the right eye's open ratio")
    m.add_argument("--lip-open", type=ratio, default=None, metavar="X",
                   help="force the mouth's open ratio (0 closed, 0.5 wide open)")
    m.add_argument("--no-retarget-eyes", action="store_true",
                   help="do not rescale the driver's eye openness to the source's eyes")
    m.add_argument("--no-retarget-lip", action="store_true",
                   help="do not rescale the driver's mouth openness to the source's mouth")
    m.add_argument("--no-gaze", action="store_true", help="keep the source's gaze")
    m.add_argument("--gaze", type=number, nargs=2, default=None, metavar=("X", "Y"),
                   help="fix the gaze: iris offset in eye widths, e.g. --gaze 0.1 0 looks to the image right")
    m.add_argument("--head-offset", type=number, nargs=3, default=None, metavar=("YAW", "PITCH", "ROLL"),
                   help="add to the head pose, degrees (e.g. --head-offset 10 0 0 turns toward the image right)")
    m.add_argument("--smoothing", type=non_negative, default=1.0, metavar="X",
                   help="driving-face landmark smoothing: 0 off, larger is smoother (default: 1)")

    o = p.add_argument_group("output file")
    o.add_argument("--no-audio", action="store_true", help="do not copy the driving video's audio")
    o.add_argument("--audio", metavar="FILE", default=None, help="use this audio track instead")
    o.add_argument("--no-provenance", action="store_true",
                   help="do not embed the 'synthetic, made with faceanim' metadata mark (not recommended)")
    o.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")


ANIMATE_EXAMPLES = """\
examples:
  faceanim animate --source me.jpg --driving talk.mp4 -o out.mp4
  faceanim animate --source me.jpg --driving template:blink -o blink.mp4
  faceanim animate --source me.jpg --driving smile.jpg -o smiling.png
  faceanim animate --source me.jpg --driving motion.npz -o out.mp4 --no-pose --expression-scale 1.3
  faceanim animate --source group.jpg --driving template:nod --face all -o nod.mp4
  faceanim animate --source me.jpg --driving template:demo --eyes-open 0.35 --gaze 0.1 0 -o demo.mp4

driving inputs: a video, an image (writes an image), a motion .npz from `faceanim extract-motion`,
or template:NAME with NAME one of nod, turn, blink, smile, talk, demo (`faceanim templates`).
Outputs carry a provenance mark saying they are synthetic; check one with `faceanim verify FILE`.
"""

INSPECT_EXAMPLES = """\
examples:
  faceanim inspect portrait.jpg                       # faces, head pose, eye/lip openness
  faceanim inspect portrait.jpg --out annotated.png   # plus landmarks, axes and masks drawn on a copy
  faceanim inspect driving.mp4 --max-frames 100 --json
  faceanim inspect driving.mp4 --out tracked.mp4      # every frame annotated; red banner = no face
  faceanim inspect speech.mp3                         # duration, sample rate, channels, share of speech
"""

EXTRACT_EXAMPLES = """\
examples:
  faceanim extract-motion driving.mp4 -o motion.npz
  faceanim animate --source me.jpg --driving motion.npz -o out.mp4

The .npz holds head pose, expression and eye/lip/gaze values per frame: no pixels of the performer.
"""

VERIFY_EXAMPLES = """\
examples:
  faceanim verify out.mp4        # exit 0 and print the mark if the file was made by faceanim
  faceanim verify photo.jpg      # exit 1: no faceanim provenance mark found

A missing mark does not prove a file is authentic: metadata can be stripped by re-encoding.
"""

DEMO_EXAMPLES = """\
examples:
  faceanim demo                      # writes out/demo.mp4
  faceanim demo -o /tmp/demo.mp4 --max-frames 25

The portrait is scikit-image's astronaut (Eileen Collins, NASA, public domain), driven by template:demo.
"""

TEMPLATES_EXAMPLES = """\
examples:
  faceanim templates
  faceanim animate --source me.jpg --driving template:nod -o nod.mp4
"""

EVAL_EXAMPLES = """\
examples:
  faceanim eval same-id --renderer identity tps analytic            # every clip of the sample data
  faceanim eval same-id --renderer analytic --max-clips 2 --limit 10
  faceanim eval same-id --renderer identity tps analytic --clip-stride 4       # every 4th clip: 41 of 163
  faceanim eval cross-id --portraits a.jpg b.png --clips d0.mp4 d3.mp4 --renderer analytic

same-id: source = a clip's first frame, driver = the clip, ground truth = the clip; frame 0 is not scored
and image scores count only pixels inside the clip's frame (PSNR, SSIM, L1, mouth-region PSNR/SSIM,
sharpness, CSIM, AKD, APD, AED, eye/lip ratio errors, jitter, background). cross-id: portraits driven by
other people's clips (relative APD/AED, eye/lip correlation with the driver, CSIM to the portrait,
background). Every frame runs through the same Session and default smoothing as `animate`. CSIM needs the
[eval] extra (dlib); LPIPS and FID need weights no dependency ships offline: reported as not measured.
results.md records the command that reproduces the run and every clip or pair used.
"""

BENCH_EXAMPLES = """\
examples:
  faceanim bench --source portrait.jpg --clip driving_512.mp4 --frames 100 --json out/bench.json

End to end = wall-clock time of the real file job (faceanim animate: decode to encoded file, encoder
flush included), frames / seconds. Also reports the median/p95 ms per stage and their sum (stages timed
one by one, not the wall clock), peak RSS, and ratios to a decode+copy+encode reference from the same run.
"""

MAIN_EXAMPLES = """\
examples:
  faceanim demo
  faceanim inspect portrait.jpg
  faceanim animate --source portrait.jpg --driving driving.mp4 -o out.mp4
  faceanim animate --source portrait.jpg --driving template:smile -o smile.mp4
  faceanim extract-motion driving.mp4 -o motion.npz
  faceanim verify out.mp4

Run `faceanim COMMAND --help` for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    from faceanim import __version__
    from faceanim.render.registry import DEFAULT_HELP, available_renderers, default_renderer

    renderers = available_renderers()
    common = _common()
    parser = argparse.ArgumentParser(
        prog=PROG, description="Animate a single portrait from a driving video, image or motion template (CPU).",
        epilog=MAIN_EXAMPLES, formatter_class=_Formatter, parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=epilog, formatter_class=_Formatter,
                              parents=[common])

    p = add("inspect", "show the faces, head pose and eye/lip openness faceanim sees in an image or video "
            "(or an audio file's duration, rate, channels and share of speech)", INSPECT_EXAMPLES)
    p.add_argument("path", metavar="IMAGE|VIDEO|AUDIO")
    p.add_argument("--out", metavar="FILE", default=None, help="also write an annotated copy (image or video)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="video: inspect N frames")
    p.set_defaults(func=cmd_inspect)

    p = add("animate", "animate a portrait with a driving video, image, motion file or template", ANIMATE_EXAMPLES)
    p.add_argument("--source", "-s", required=True, metavar="S", help="the portrait to animate (image or video)")
    p.add_argument("--driving", "-d", required=True, metavar="D",
                   help="video, image, motion .npz or template:NAME")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output video (or image for an image driver)")
    add_animation_options(p, renderers)
    p.set_defaults(func=cmd_animate)

    p = add("extract-motion", "save a driving video's motion (no pixels) as a reusable .npz", EXTRACT_EXAMPLES)
    p.add_argument("driving", metavar="D", help="driving video")
    p.add_argument("-o", "--output", required=True, metavar="motion.npz")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--smoothing", type=non_negative, default=1.0, metavar="X",
                   help="landmark smoothing: 0 off, larger is smoother (default: 1)")
    p.set_defaults(func=cmd_extract_motion)

    p = add("verify", "check a file for faceanim's provenance mark", VERIFY_EXAMPLES)
    p.add_argument("path", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the mark as JSON")
    p.set_defaults(func=cmd_verify)

    p = add("demo", "animate a bundled public-domain portrait with template:demo", DEMO_EXAMPLES)
    p.add_argument("-o", "--output", default="out/demo.mp4", metavar="OUT", help="default: out/demo.mp4")
    p.add_argument("--renderer", choices=renderers, default=None,
                   help=f"default here: {default_renderer()} ({DEFAULT_HELP})")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    p.set_defaults(func=cmd_demo)

    p = add("eval", "measure renderers with the papers' protocols (same-id, cross-id) on real clips", EVAL_EXAMPLES)
    p.add_argument("protocol", choices=("same-id", "cross-id"))
    p.add_argument("--renderer", nargs="+", default=["analytic"], choices=renderers, metavar="NAME",
                   help=f"one or more of: {', '.join(renderers)} (compared side by side in one run)")
    p.add_argument("--clips", nargs="+", default=None, metavar="VIDEO",
                   help="clips to use (default: every video in DATA/talking and DATA/driving)")
    p.add_argument("--portraits", nargs="+", default=None, metavar="IMAGE",
                   help="cross-id: portraits to drive (default: every single-face portrait in DATA/portraits)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="sample data folder (default: $FACEANIM_DATA, else ../shared/data)")
    p.add_argument("--limit", type=positive_int, default=40, metavar="N",
                   help="scored frames per clip (default 40)")
    p.add_argument("--frames-every", type=positive_int, default=2, metavar="N",
                   help="score every N-th frame (default 2; every frame is animated)")
    p.add_argument("--csim-frames", type=positive_int, default=8, metavar="N",
                   help="frames per clip embedded for CSIM (default 8; dlib is slow on a CPU)")
    p.add_argument("--max-clips", type=positive_int, default=None, metavar="N", help="use only the first N clips")
    p.add_argument("--clip-stride", type=positive_int, default=1, metavar="K",
                   help="use every K-th clip of the list (a fixed, spread-out subset; applied before --max-clips)")
    p.add_argument("--out", default="out/eval", metavar="DIR", help="results.json, results.md, contact sheets")
    p.set_defaults(func=cmd_eval)

    p = add("bench", "per-stage latency, FPS and memory of every renderer, as ratios to a reference pass",
            BENCH_EXAMPLES)
    p.add_argument("--source", required=True, metavar="IMAGE")
    p.add_argument("--clip", required=True, metavar="VIDEO", help="driving clip (e.g. 512x512)")
    p.add_argument("--renderer", nargs="+", default=renderers, choices=renderers, metavar="NAME")
    p.add_argument("--frames", type=positive_int, default=None, metavar="N",
                   help="frames per configuration (default: the whole clip)")
    p.add_argument("--threads", type=positive_int, default=2, metavar="N")
    p.add_argument("--live", action="store_true",
                   help="live mode instead: --clip stands in for a camera (paced at its own frame rate); reports "
                        "sustained FPS, median/p95 glass-to-glass latency and the share of dropped frames")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    p.set_defaults(func=cmd_bench)

    p = add("templates", "list the bundled motion templates", TEMPLATES_EXAMPLES)
    p.set_defaults(func=cmd_templates)
    for module in _command_modules():
        module.register(add, renderers)
    return parser


#: Stage-owned commands: each module defines ``register(add, renderers)``, which adds its subcommand(s) with
#: ``add(name, help, epilog)`` and sets ``func`` (a function of the parsed args returning the exit code). The
#: commands live beside their stage so this file stays parsing and printing only.
COMMAND_MODULES = (
    "faceanim.train.commands",  # prepare-data, train, export
    "faceanim.audio.commands",  # speak
    "faceanim.app.commands",  # app
    "faceanim.live.commands",  # live
    "faceanim.server.commands",  # serve
    "faceanim.batch.commands",  # batch
)


def _command_modules() -> list:
    import importlib

    found = []
    for name in COMMAND_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:  # a stage not present in this build; any other missing module is a bug
            if exc.name is None or not name.startswith(exc.name):
                raise
    return found


# ---------------------------------------------------------------------------------------------- commands


def job_options(args: argparse.Namespace):
    from faceanim.face.crop import CropConfig
    from faceanim.motion.transfer import TransferConfig
    from faceanim.pipeline.animator import AnimatorConfig
    from faceanim.pipeline.run import JobOptions
    from faceanim.pipeline.session import SessionConfig
    from faceanim.render.paste import PasteConfig

    transfer = TransferConfig(
        mode=args.mode,
        pose=not args.no_pose,
        expression=not args.no_expression,
        expression_scale=args.expression_scale,
        retarget_eyes=not args.no_retarget_eyes,
        retarget_lip=not args.no_retarget_lip,
        eyes_open=args.eyes_open,
        left_eye_open=args.left_eye_open,
        right_eye_open=args.right_eye_open,
        lip_open=args.lip_open,
        gaze=not args.no_gaze,
        gaze_direction=None if args.gaze is None else (args.gaze[0], args.gaze[1]),
        head_offset=(0.0, 0.0, 0.0) if args.head_offset is None else tuple(args.head_offset),
    )
    paste = PasteConfig() if args.feather is None else PasteConfig(feather=args.feather)
    animator = AnimatorConfig(
        renderer=args.renderer,
        crop=CropConfig(size=args.crop_size),
        transfer=transfer,
        paste=paste,
        crop_only=args.crop_only,
    )
    return JobOptions(
        animator=animator,
        session=SessionConfig(smoothing=args.smoothing),
        face_index=args.face,
        audio=not args.no_audio,
        audio_path=args.audio,
        provenance=not args.no_provenance,
        max_frames=args.max_frames,
        progress=args.progress,
    )


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def _wrote(report) -> None:
    print(f"wrote {report.output} ({_frames(report.frames)}, {report.missing_frames} without a face)")


def cmd_animate(args: argparse.Namespace) -> int:
    from faceanim.errors import MediaError
    from faceanim.pipeline.run import animate_file

    if args.audio is not None and not Path(args.audio).is_file():
        raise MediaError("no such audio file", path=args.audio)
    options = job_options(args)
    _wrote(animate_file(args.source, args.driving, args.output, options))
    return 0


def cmd_extract_motion(args: argparse.Namespace) -> int:
    from faceanim.pipeline.run import JobOptions, extract_motion
    from faceanim.pipeline.session import SessionConfig

    options = JobOptions(session=SessionConfig(smoothing=args.smoothing), max_frames=args.max_frames,
                         progress=args.progress)
    _wrote(extract_motion(args.driving, args.output, options))
    return 0


def _range(s: dict | None, unit: str = "") -> str:
    if s is None:
        return "n/a"
    return f"mean {s['mean']:+.1f}{unit}, {s['min']:+.1f}{unit} … {s['max']:+.1f}{unit}"


def _ratio_range(s: dict | None) -> str:
    return "n/a" if s is None else f"{s['min']:.2f} … {s['max']:.2f} (mean {s['mean']:.2f})"


def format_inspect_report(report: dict) -> str:
    """A human-readable summary of :func:`faceanim.pipeline.inspect.inspect_file`'s report."""
    lines = []
    if report["kind"] == "audio":
        ch = report["channels"]
        lines.append(f"{report['path']}: audio ({report['codec']}), {report['duration']:.2f} s, "
                     f"{report['sample_rate']} Hz, {ch} channel{'' if ch == 1 else 's'}")
        lines.append(f"  speech: {report['speech_share']:.0%} of the time ({report['speech_seconds']:.1f} s)")
        return "\n".join(lines)
    if report["kind"] == "image":
        faces = report["faces"]
        lines.append(f"{report['path']}: image {report['width']}x{report['height']}, "
                     f"{len(faces)} face{'' if len(faces) == 1 else 's'}" + ("" if faces else " found"))
        for f in faces:
            x0, y0, x1, y1 = f["box"]
            lines.append(
                f"  face {f['index']}: box {x0},{y0}-{x1},{y1}  yaw {f['yaw']:+.1f}°  pitch {f['pitch']:+.1f}°  "
                f"roll {f['roll']:+.1f}°  eyes open {f['eye_open'][0]:.2f}/{f['eye_open'][1]:.2f}  "
                f"lip open {f['lip_open']:.2f}  scale {f['scale']:.1f}"
            )
    else:
        st = report["status"]
        lines.append(f"{report['path']}: video {report['width']}x{report['height']} at {report['fps']} fps, "
                     f"{report['frame_count']} frames; inspected {report['frames']}")
        lines.append(f"  face: detected {st['detected']}, tracked {st['tracked']}, missing {st['missing']}")
        if report["missing_frames"]:
            shown = report["missing_frames"][:20]
            more = len(report["missing_frames"]) - len(shown)
            lines.append("  frames without a face: " + ", ".join(shown) + (f", … ({more} more)" if more > 0 else ""))
        for k in ("yaw", "pitch", "roll"):
            lines.append(f"  {k:<5}: {_range(report['pose'][k], '°')}")
        lines.append(f"  eyes open: left {_ratio_range(report['eye_open']['left'])}, "
                     f"right {_ratio_range(report['eye_open']['right'])}")
        lines.append(f"  lip open: {_ratio_range(report['lip_open'])}")
    if report.get("output"):
        lines.append(f"wrote {report['output']}")
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    from faceanim.pipeline.inspect import inspect_file
    from faceanim.pipeline.run import check_output_path

    if args.out is not None:
        check_output_path(args.out, args.path)
    report = inspect_file(args.path, args.out, max_frames=args.max_frames, progress=args.progress)
    print(json.dumps(report, indent=2) if args.json else format_inspect_report(report))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from faceanim.errors import MediaError
    from faceanim.media.provenance import read_provenance

    if not Path(args.path).exists():
        raise MediaError("no such file", path=args.path)
    mark = read_provenance(args.path)
    if args.json:
        print(json.dumps(mark, indent=2))
        return 0 if mark else 1
    if not mark:
        print(f"{args.path}: no faceanim provenance mark found")
        return 1
    print(f"{args.path}: faceanim provenance mark found (synthetic media)")
    for k, v in mark.items():
        print(f"  {k}: {v}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from skimage import data

    from faceanim.face.track import TrackerConfig
    from faceanim.media.image import write_image
    from faceanim.pipeline.animator import AnimatorConfig
    from faceanim.pipeline.run import JobOptions, animate_file

    options = JobOptions(animator=AnimatorConfig(renderer=args.renderer), tracker=TrackerConfig(),
                         max_frames=args.max_frames, progress=args.progress)
    with tempfile.TemporaryDirectory(prefix="faceanim-demo-") as tmp:
        source = str(Path(tmp) / "astronaut.png")
        write_image(source, data.astronaut())
        _wrote(animate_file(source, "template:demo", args.output, options))
    return 0


def _default_data(args: argparse.Namespace) -> Path:
    from faceanim.eval.data import data_folder

    return data_folder(args.data)


def cmd_eval(args: argparse.Namespace) -> int:
    import shlex

    from faceanim.errors import FaceAnimError
    from faceanim.eval.frames import EvalSettings
    from faceanim.eval.runner import default_clips, default_portraits, run_protocol

    data = _default_data(args)
    clips = [Path(c) for c in args.clips] if args.clips else default_clips(data)
    for c in clips:
        if not c.is_file():
            raise FaceAnimError("no such clip", path=c)
    clips = clips[:: args.clip_stride]
    clips = clips[: args.max_clips] if args.max_clips else clips
    portraits: list[Path] = []
    if args.protocol == "cross-id":
        portraits = [Path(p) for p in args.portraits] if args.portraits else default_portraits(data)
        for p in portraits:
            if not p.is_file():
                raise FaceAnimError("no such portrait", path=p)
    settings = EvalSettings(limit=args.limit, every=args.frames_every, csim_frames=args.csim_frames)
    # the command that reproduces this run, with every default spelled out
    cmd = ["faceanim", "eval", args.protocol, "--renderer", *args.renderer]
    cmd += ["--clips", *map(str, clips)] if args.clips else ["--data", str(data)] + (
        ["--clip-stride", str(args.clip_stride)] if args.clip_stride > 1 else []) + (
        ["--max-clips", str(args.max_clips)] if args.max_clips else [])
    if args.protocol == "cross-id":
        cmd += ["--portraits", *map(str, portraits)] if args.portraits else []
    cmd += ["--limit", str(args.limit), "--frames-every", str(args.frames_every), "--csim-frames",
            str(args.csim_frames), "--out", str(args.out)]
    summary = run_protocol(args.protocol, args.renderer, clips, Path(args.out), portraits, settings, args.progress,
                           command=shlex.join(cmd))
    for warning in summary["warnings"]:
        print(warning, file=sys.stderr)
    print(summary["table"])
    print(f"wrote {Path(args.out) / 'results.json'}, results.md (with the command that reproduces it) "
          "and contact sheets")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from faceanim.errors import MediaError
    from faceanim.eval.bench import BenchSettings, format_bench, run_bench
    from faceanim.eval.report import write_json

    for p in (args.source, args.clip):
        if not Path(p).is_file():
            raise MediaError("no such file", path=p)
    if args.live:
        return _bench_live(args)
    result = run_bench(Path(args.source), Path(args.clip), args.renderer,
                       BenchSettings(frames=args.frames, threads=args.threads))
    result["command"] = " ".join(["faceanim", "bench", "--source", str(args.source), "--clip", str(args.clip),
                                  "--renderer", *args.renderer, "--threads", str(args.threads)]
                                 + (["--frames", str(args.frames)] if args.frames else []))
    if args.json:
        write_json(args.json, result)
    print(format_bench(result))
    return 0


def _bench_live(args: argparse.Namespace) -> int:
    from faceanim.eval.report import write_json
    from faceanim.live.bench import measure_live

    rows = []
    for name in args.renderer:
        r = measure_live(args.source, args.clip, renderer=name, max_frames=args.frames)
        r["renderer"] = name
        rows.append(r)
        lat = r["latency_ms"]
        print(f"{name:<16} {r['fps']:6.1f} FPS sustained (input {r['input_fps']:.1f}), latency median "
              f"{lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms, dropped {100 * r['drop_share']:.1f}% "
              f"of {r['captured']} frames")
    if args.json:
        write_json(args.json, {"live": rows, "source": str(args.source), "clip": str(args.clip)})
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from faceanim.motion.templates import BUNDLED_TEMPLATES

    for name in BUNDLED_TEMPLATES:
        print(f"template:{name:<7} {TEMPLATE_DESCRIPTIONS.get(name, '')}".rstrip())
    return 0


# ---------------------------------------------------------------------------------------------- entry point


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return _one_line(str(exc)) or reason


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a negative answer/internal error, 2 bad input, 130 ^C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    _silence_third_party_logs(verbose)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and usage errors
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        if args.command is None:
            parser.print_help()
            return 0
        args.verbose = getattr(args, "verbose", False)
        args.quiet = getattr(args, "quiet", False)
        args.progress = not args.quiet and sys.stderr.isatty()
        verbose = args.verbose
        if verbose:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _report(exc, verbose)
    with _native_stderr_filtered(not verbose):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            return _report(exc, verbose)


def _report(exc: Exception, verbose: bool) -> int:
    """One line on stderr (a traceback too with --verbose); the exit code for this kind of error."""
    from faceanim.errors import FaceAnimError

    if verbose:
        traceback.print_exc()
    if isinstance(exc, FaceAnimError):
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError):
        print(f"{PROG}: error: {_one_line(_os_error_message(exc))}", file=sys.stderr)
        return 2
    hint = "" if verbose else " (run with --verbose for details)"
    print(f"{PROG}: error: internal error: {exc.__class__.__name__}: {_one_line(str(exc))}{hint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
