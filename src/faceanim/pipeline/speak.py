"""``speak``: make a portrait talk from speech (MobilePortrait's audio-driven mode, MODA's audio-to-motion).

Speech → log-mels + voice activity (streaming) → the audio-to-motion network over sliding windows → per frame a
``Motion`` built as displacements from the SOURCE's own canonical face and pose → the same transfer, renderer
and paste-back as a driving video → H.264 with the speech muxed in and the provenance mark.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceanim.audio.generate import FPS, SpeechFrame, generate, speech_input
from faceanim.audio.targets import landmark_groups, style_vector
from faceanim.errors import FaceAnimError, MediaError
from faceanim.face.analyze import FaceState
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import load_face_model
from faceanim.face.ratios import eye_open_ratios, lip_open_ratio
from faceanim.media.audio import audio_duration, iter_audio
from faceanim.media.image import read_image
from faceanim.media.provenance import provenance_metadata
from faceanim.media.video import VideoWriter
from faceanim.motion.retarget import set_lip_open
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.pipeline.engine import run_stages
from faceanim.pipeline.session import DriverSample, Session, SessionConfig, compose_stage, session_stage

__all__ = ["SpeakOptions", "SpeakReport", "SpeechStyle", "motion_from_speech", "speak_file", "speech_expression",
           "speech_motions"]


CLOSED_LIP = 0.04  # lip-open ratio of a closed mouth; 0 (lips touching) squeezes the lips of an open source flat


@dataclass(frozen=True)
class SpeechStyle:
    """Style controls: how much the head moves, how often the eyes blink, how strong the expression is."""

    pose_amplitude: float = 1.0  # × the network's head motion (0 = still head)
    blink_rate: float = 15.0  # blinks per minute added on top of the network's eyes (0 = none)
    expression_intensity: float = 1.0  # × mouth and eye/brow displacements
    seed: int = 0
    temperature: float = 1.0  # latent sampling spread (0 = the prior's mean)


@dataclass(frozen=True)
class SpeakOptions:
    animator: AnimatorConfig = field(default_factory=AnimatorConfig)
    style: SpeechStyle = field(default_factory=SpeechStyle)
    weights: str | None = None
    audio_encoder: str | None = None  # a local wav2vec2 / HuBERT / Whisper folder (weights trained on it)
    vad: str = "energy"  # voice activity: "energy" or "silero" (silero-vad's bundled model)
    face_index: int = 0
    provenance: bool = True
    max_seconds: float | None = None
    progress: bool = True


@dataclass(frozen=True)
class SpeakReport:
    output: Path
    frames: int
    seconds: float
    speech_share: float  # fraction of frames with voice activity
    fps: Fraction


def _lower_face_weights() -> np.ndarray:
    """1 for points below the nose tip (moved by speech, closed in silence), 0 above."""
    c = load_face_model().canonical
    return (c[:, 1] > c[1, 1]).astype(np.float64)


def _blink_track(n: int, rate_per_min: float, rng: np.random.Generator, start: int = 0) -> Iterator[float]:
    """Per-frame eyelid factor (1 open, ~0 closed): blinks as a seeded renewal process, 200 ms each."""
    shape = np.array([0.6, 0.15, 0.05, 0.3, 0.75])  # closing fast, opening slower
    mean_gap = 60.0 * FPS / rate_per_min if rate_per_min > 0 else np.inf
    next_blink = start + (rng.exponential(mean_gap) if np.isfinite(mean_gap) else np.inf)
    i = start
    while n < 0 or i < start + n:
        k = i - next_blink
        if 0 <= k < len(shape):
            yield float(shape[int(k)])
        else:
            if k >= len(shape):
                next_blink = i + FPS * 0.5 + rng.exponential(mean_gap)  # at least 0.5 s apart
            yield 1.0
        i += 1


def speech_expression(rest: np.ndarray, frame: SpeechFrame, intensity: float = 1.0,
                      lower: np.ndarray | None = None) -> np.ndarray:
    """The subject's canonical face for one frame: rest + the network's displacements (the mouth and eye heads
    on their points, the composer elsewhere), with the lower face gated by voice activity."""
    g = landmark_groups()
    lower = _lower_face_weights() if lower is None else lower
    disp = frame.dense.astype(np.float64).copy()
    disp[g.mouth] = frame.mouth
    disp[g.eyes] = frame.eyes
    gate = lower * frame.gate + (1.0 - lower)  # speech moves the lower face; eyes/brows move always
    return np.asarray(rest, np.float64) + intensity * disp * gate[:, None]


def motion_from_speech(src: FaceState, frame: SpeechFrame, style: SpeechStyle, blink: float,
                       lower: np.ndarray) -> Motion:
    """One frame's ``Motion``: the source's canonical face + the network's displacements, the source's pose ⊕
    the network's relative pose. Silence (gate 0) gives the source's own mouth, closed if it was open."""
    expr = speech_expression(src.expression, frame, style.expression_intensity, lower)
    if frame.gate < 1.0 and src.lip_open > CLOSED_LIP:  # an open-mouthed source closes its mouth in silence
        lip = float(lip_open_ratio(expr))
        expr = set_lip_open(expr, CLOSED_LIP + (lip - CLOSED_LIP) * frame.gate)
    p = frame.pose.astype(np.float64) * style.pose_amplitude
    yaw, pitch, roll = src.angles
    rotation = rotation_from_euler(yaw + 10.0 * p[0], pitch + 10.0 * p[1], roll + 10.0 * p[2])
    translation = np.asarray(src.pose.translation, np.float64) + np.array([p[3], p[4], 0.0]) * src.pose.scale
    scale = float(src.pose.scale * np.exp(p[5]))
    eyes = eye_open_ratios(expr) * blink
    return Motion(rotation, translation, scale, expr, np.asarray(eyes, np.float64), float(lip_open_ratio(expr)),
                  np.asarray(src.gaze, np.float64))


def speech_motions(model, src: FaceState, audio: str | Path, style: SpeechStyle = SpeechStyle(),
                   max_seconds: float | None = None, encoder=None, vad: str = "energy"
                   ) -> Iterator[tuple[Motion, float]]:
    """(Motion, speech gate) per 25-fps frame of ``audio`` for the source face ``src`` (streaming)."""
    chunks = iter_audio(audio, 16000, chunk_seconds=2.0)
    if max_seconds is not None:
        limit = round(max_seconds * 16000)

        def capped(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            seen = 0
            for c in it:
                if seen >= limit:
                    return
                yield c[: limit - seen]
                seen += c.size

        chunks = capped(chunks)
    lower = _lower_face_weights()
    frames = generate(model, speech_input(chunks, detector=vad), style_vector(src.expression), seed=style.seed,
                      temperature=style.temperature, encoder=encoder)
    blinks = _blink_track(-1, style.blink_rate, np.random.default_rng([style.seed, 1]))
    for frame, blink in zip(frames, blinks, strict=False):
        yield motion_from_speech(src, frame, style, blink, lower), frame.gate


def speak_file(source: str, audio: str, output: str, options: SpeakOptions = SpeakOptions(),
               on_progress: Callable[[int, int | None], None] | None = None,
               cancel: threading.Event | None = None) -> SpeakReport:
    """Animate the portrait ``source`` talking ``audio``; writes the video ``output`` (audio muxed).

    ``on_progress(frames_done, total)`` is called per frame; setting ``cancel`` stops the job and writes nothing.
    """
    from faceanim.audio.weights import load_audio2motion
    from faceanim.pipeline.run import check_output_path

    check_output_path(output, source, audio)
    if not Path(source).is_file():
        raise MediaError("no such file", path=source)
    duration = audio_duration(audio)  # validates the audio before any work
    if options.vad == "silero":
        from faceanim.audio.vad import SileroVad

        SileroVad()  # fails now, with a clear message, if silero-vad is not installed
    model = load_audio2motion(options.weights)
    encoder = None
    if options.audio_encoder is not None:
        from faceanim.audio.encoders import load_speech_encoder

        encoder = load_speech_encoder(options.audio_encoder)
        if model.config.audio_dim != encoder.dim:
            raise FaceAnimError(f"the audio-to-motion weights expect {model.config.audio_dim or 'log-mel'} features, "
                                f"this {encoder.kind} encoder gives {encoder.dim}", path=options.audio_encoder)
    elif model.config.audio_dim:
        raise FaceAnimError("these weights were trained on a speech encoder's features: pass --audio-encoder PATH",
                            path=options.weights)
    image = read_image(source)
    animator = Animator.prepare(image, options.animator, options.face_index, path=source)
    src = animator.source.state
    reference = Motion.from_state(src)
    total = int(np.ceil(min(duration, options.max_seconds or duration) * FPS))
    meta = None
    if options.provenance:
        meta = provenance_metadata(options.animator.renderer, mode="speech", source=Path(source).name,
                                   audio=Path(audio).name)
    n = speaking = 0

    # speech motion is already against the source's own face: it is the session's fixed reference
    session = Session(animator, SessionConfig(smoothing=0.0, compose=False), reference=reference)
    samples = (DriverSample(i, i / FPS, None, motion, "speech", gate)
               for i, (motion, gate) in enumerate(speech_motions(model, src, audio, options.style, options.max_seconds,
                                                                  encoder, options.vad)))
    # speech → motion | session (transfer + render) | paste-back run in their own threads; this loop encodes
    bar = tqdm(total=total, disable=not options.progress, unit="frame", desc="speak")
    try:
        with VideoWriter(output, Fraction(FPS), audio=audio, metadata=meta) as writer:
            for frame in run_stages(samples, [session_stage(session), compose_stage(animator)], cancel=cancel):
                writer.write(frame.image, time=frame.time)
                n += 1
                speaking += frame.payload > 0.5
                bar.update(1)
                if on_progress is not None:
                    on_progress(n, total)
            if n == 0:
                raise FaceAnimError("the audio is too short to make a frame", path=audio)
    finally:
        bar.close()
    return SpeakReport(Path(output), n, n / FPS, speaking / n, Fraction(FPS))
