"""File-to-file jobs behind the CLI, app and server: ``animate_file`` and ``extract_motion``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from tqdm import tqdm

from faceanim.errors import FaceAnimError, MediaError, NoFaceError
from faceanim.face.analyze import prepare_source_face
from faceanim.face.crop import warp_to_crop
from faceanim.face.detect import DetectedFace, landmark_box
from faceanim.face.masks import Segmenter
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image, write_image
from faceanim.media.kinds import is_image_path, is_video_path
from faceanim.media.provenance import provenance_metadata
from faceanim.media.video import VideoWriter, iter_video, probe_video
from faceanim.motion.templates import BUNDLED_TEMPLATES, TemplateWriter, procedural_template
from faceanim.pipeline.animator import Animator, AnimatorConfig, PreparedFace
from faceanim.pipeline.drive import DrivingFrame, drive_from_template, motion_from_image
from faceanim.pipeline.engine import Stage, run_stages
from faceanim.pipeline.session import (
    DriverSample,
    Session,
    SessionConfig,
    SessionFrame,
    TimeCursor,
    compose_stage,
    session_stage,
)
from faceanim.render.paste import plan_paste
from faceanim.render.registry import create_renderer

TEMPLATE_PREFIX = "template:"
V2V_REFRESH = 15  # video-to-video: frames between full source preparations (segmentation, inpainting, mesh)


@dataclass(frozen=True)
class JobOptions:
    animator: AnimatorConfig = field(default_factory=AnimatorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    face_index: int | Literal["all"] = 0
    audio: bool = True  # mux the driving video's audio (or ``audio_path``)
    audio_path: str | None = None
    provenance: bool = True
    max_frames: int | None = None
    progress: bool = True  # a tqdm bar on stderr (callers with their own UI pass ``on_progress`` instead)


@dataclass(frozen=True)
class JobReport:
    output: Path
    frames: int
    missing_frames: int  # driving frames without a face (held motion, or the neutral source)
    fps: Fraction | None


Progress = Callable[[int, int | None], None]


def _metadata(options: JobOptions, **extra: str) -> dict[str, str] | None:
    return provenance_metadata(options.animator.renderer, **extra) if options.provenance else None


def driving_kind(path: str) -> str:
    """``template`` (bundled name or .npz), ``image`` or ``video``; a clear error otherwise."""
    if path.startswith(TEMPLATE_PREFIX):
        name = path[len(TEMPLATE_PREFIX):]
        if name not in BUNDLED_TEMPLATES:
            raise FaceAnimError(f"unknown bundled template {name!r}; choose from {', '.join(BUNDLED_TEMPLATES)}")
        return "template"
    if path.lower().endswith(".npz"):
        if not Path(path).exists():
            raise MediaError("no such file", path=path)
        return "template"
    p = Path(path)
    if not p.exists():
        raise MediaError("no such file", path=path)
    if is_image_path(p):
        return "image"
    if is_video_path(p):
        return "video"
    raise MediaError("unsupported driving input (expected a video, an image or a motion .npz)", path=path)


@dataclass(frozen=True)
class Driver:
    """A driving input opened once: its frame rate, a stream of samples (videos are decoded by ``source`` and
    tracked by ``stages``, in their own threads), frame count (if known) and whether it has audio."""

    fps: Fraction
    source: Iterable[Any]
    stages: tuple[Stage, ...]  # turn ``source`` items into ``DriverSample``s
    total: int | None
    has_audio: bool


def track_stage(config: TrackerConfig, keep_frames: bool = False) -> Stage:
    """Engine stage: decoded frames → driver samples with raw landmarks (smoothing happens in the session);
    ``keep_frames`` carries each decoded frame along as the sample's payload (video-to-video needs it)."""

    def stage(frames: Iterator[Any]) -> Iterator[DriverSample]:
        with FaceTracker(replace(config, smoothing=0.0, describe=False)) as tracker:
            for vf in frames:
                tf = tracker.update(vf.image, vf.index, vf.time)
                yield DriverSample(vf.index, vf.time, tf.landmarks, None, tf.status.value, vf if keep_frames else None)

    return stage


def _template_samples(frames: Iterable[DrivingFrame]) -> Iterator[DriverSample]:
    for df in frames:
        yield DriverSample(df.index, df.time, None, df.motion, df.status)


def open_driver(path: str, options: JobOptions) -> Driver:
    """Any non-image driver as a stream of driver samples (bundled template, motion .npz or video)."""
    if path.startswith(TEMPLATE_PREFIX):
        tpl = procedural_template(path[len(TEMPLATE_PREFIX):])
        frames = (DrivingFrame(i, float(i / tpl.fps), m, "template") for i, m in enumerate(tpl.motions))
        return Driver(tpl.fps, islice(_template_samples(frames), options.max_frames), (), len(tpl), False)
    if path.lower().endswith(".npz"):
        fps, frames, n = drive_from_template(path)
        total = min(n, options.max_frames) if options.max_frames else n
        return Driver(fps, islice(_template_samples(frames), options.max_frames), (), total, False)
    info = probe_video(path)
    n = info.frame_count
    total = min(n, options.max_frames) if (n and options.max_frames) else n
    tracker = replace(options.tracker, face_index=options.face_index if isinstance(options.face_index, int) else 0)
    return Driver(info.fps, iter_video(path, max_frames=options.max_frames), (track_stage(tracker),), total,
                  info.has_audio)


class _Progress:
    """tqdm and/or a callback, one call per frame."""

    def __init__(self, total: int | None, options: JobOptions, on_progress: Progress | None, desc: str) -> None:
        self.total = total
        self.bar = tqdm(total=total, disable=not options.progress, unit="frame", desc=desc)
        self.on_progress = on_progress
        self.done = 0

    def step(self) -> None:
        self.done += 1
        self.bar.update(1)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def close(self) -> None:
        self.bar.close()


def check_output_path(output: str, *inputs: str) -> None:
    """Refuse an output path that is one of the inputs (the atomic rename would silently replace it)."""
    out = Path(output).resolve()
    for p in inputs:
        if not p.startswith(TEMPLATE_PREFIX) and Path(p).exists() and Path(p).resolve() == out:
            raise FaceAnimError("output path is the same file as an input; choose another name", path=output)


def _write(writer: VideoWriter, frame: SessionFrame) -> None:
    writer.write(frame.image, time=frame.time)  # timed by the driver's clock: VFR stays in sync with its audio


def animate_file(
    source: str,
    driving: str,
    output: str,
    options: JobOptions = JobOptions(),
    *,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> JobReport:
    """Animate the portrait ``source`` with ``driving`` and write ``output`` (video, or image for an image driver).

    Video jobs run as a pipeline over both cores (decode | track | render + paste-back | encode). ``on_progress``
    is called with (frames done, total or None); setting ``cancel`` stops the job (``Cancelled``) and writes nothing.
    """
    check_output_path(output, source, driving, *([options.audio_path] if options.audio_path else []))
    kind = driving_kind(driving)
    src_path = Path(source)
    if not src_path.exists():
        raise MediaError("no such file", path=source)
    if is_video_path(src_path):
        return _video_to_video(source, driving, output, options, on_progress, cancel)
    image = read_image(source)
    animator = Animator.prepare(image, options.animator, options.face_index, path=source)
    if kind == "image":
        drv_img = read_image(driving)
        motion = motion_from_image(drv_img, path=driving)
        result = animator.animate(motion, animator.image_reference(motion))
        write_image(output, result.image, _metadata(options, source=src_path.name, driving=Path(driving).name))
        if on_progress is not None:
            on_progress(1, 1)
        return JobReport(Path(output), 1, 0, None)

    driver = open_driver(driving, options)
    audio = None
    if options.audio:
        audio = options.audio_path or (driving if driver.has_audio else None)
    session = Session(animator, replace(options.session, live=False, compose=False))
    stages = [*driver.stages, session_stage(session), compose_stage(animator)]
    progress = _Progress(driver.total, options, on_progress, "animate")
    try:
        with VideoWriter(output, driver.fps, audio=audio, metadata=_metadata(options)) as writer:
            for frame in run_stages(driver.source, stages, cancel=cancel):
                _write(writer, frame)
                progress.step()
            if session.reference is None:  # raised inside the writer: the temp file is discarded
                raise NoFaceError("no face found in any driving frame", path=driving)
    finally:
        progress.close()
        session.close()
    return JobReport(Path(output), session.frames, session.missing, driver.fps)


def _video_to_video(source: str, driving: str, output: str, options: JobOptions,
                    on_progress: Progress | None = None, cancel: threading.Event | None = None) -> JobReport:
    """Re-animate the head in each frame of a source video (portrait video editing): the source keeps its
    own head motion; the driver's expression changes are added on top.

    Frames are paired by time (a 25 fps driver on a 30 fps source keeps its speed): each source frame takes
    the driver's motion at that frame's time. The source video's own face is tracked and smoothed like a
    driver; its crop follows it, while its analysis that does not change with expression (masks, the
    renderer's preparation) is redone in full only every ``V2V_REFRESH`` frames.
    """
    if driving_kind(driving) == "image":
        raise FaceAnimError("a source video needs a driving video or motion template, not an image", path=driving)
    if options.face_index == "all":
        raise FaceAnimError("video-to-video animates one face; pass --face N", path=source)
    info = probe_video(source)
    acfg = replace(options.animator, transfer=replace(options.animator.transfer, pose=False))
    renderer = create_renderer(acfg.renderer)
    driver = open_driver(driving, replace(options, max_frames=None))
    drv_session = Session(None, replace(options.session, live=False))
    # the source video's own face: smoothed like a driver, but with no reference to wait for (frames are held
    # only for the smoothing look-ahead)
    src_session = Session(None, replace(options.session, live=False, reference_seconds=0.0))
    drv_frames = run_stages(driver.source, [*driver.stages, session_stage(drv_session)], cancel=cancel)
    audio = None
    if options.audio:
        audio = options.audio_path or (source if info.has_audio else None)
    face_index = int(options.face_index)
    tracker = replace(options.tracker, face_index=face_index)
    src_frames = run_stages(iter_video(source, max_frames=options.max_frames),
                            [track_stage(tracker, keep_frames=True), session_stage(src_session)], cancel=cancel)
    total = min(info.frame_count, options.max_frames) if (info.frame_count and options.max_frames) else \
        info.frame_count
    progress = _Progress(total, options, on_progress, "video-to-video")
    driving_at = TimeCursor(drv_frames)
    animator: Animator | None = None
    n = missing = since_full = 0
    try:
        with Segmenter() as seg, VideoWriter(output, info.fps, audio=audio,
                                              metadata=_metadata(options, mode="video-to-video")) as writer:
            for sf in src_frames:
                image = sf.payload.image
                current = driving_at.at(sf.time)
                reference = drv_session.reference
                n += 1
                if sf.motion is None or not sf.motion.valid or current is None or current.motion is None \
                        or reference is None:
                    missing += 1
                    if acfg.crop_only:  # keep the frame size: the last crop (or a centred square) of this frame
                        image = _crop_like(image, animator, acfg.crop.size)
                    writer.write(image, time=sf.time)
                    progress.step()
                    continue
                lms = _source_landmarks(sf)
                det = DetectedFace(lms, landmark_box(lms))
                full = animator is None or since_full >= V2V_REFRESH
                src = prepare_source_face(image, det, seg, acfg.crop, None if full else animator.source.masks)
                state = renderer.prepare(src) if full else renderer.prepare_frame(animator.faces[0].renderer_state, src)
                since_full = 0 if full else since_full + 1
                face = PreparedFace(src, state, plan_paste(src, acfg.paste))
                if animator is None:
                    animator = Animator([face], renderer, acfg)
                animator.faces = [face]  # the source face changes every frame; the driver's state carries over
                writer.write(animator.animate(current.motion, reference, drv_session.driver).image, time=sf.time)
                progress.step()
    finally:
        progress.close()
        drv_frames.close()
        src_frames.close()
    if n == 0:
        raise MediaError("no frames", path=source)
    return JobReport(Path(output), n, missing, info.fps)


def _crop_like(image: np.ndarray, animator: Animator | None, size: int) -> np.ndarray:
    if animator is not None:
        return warp_to_crop(image, animator.source.crop)
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)


def _source_landmarks(frame: SessionFrame) -> np.ndarray:
    """The (smoothed) landmarks of a motion-only session frame, in that frame's pixels."""
    assert frame.motion is not None
    m = frame.motion
    return m.scale * m.expression @ m.rotation.T + m.translation


def extract_motion(driving: str, output: str, options: JobOptions = JobOptions(), *,
                   on_progress: Progress | None = None, cancel: threading.Event | None = None) -> JobReport:
    """Save a driving video's per-frame motion as a template (``.npz``), without any of its pixels.

    The motion is smoothed like a file job's (zero-phase), so a template replays what ``animate`` would do.
    """
    check_output_path(output, driving)
    if driving_kind(driving) != "video":
        raise MediaError("extract-motion needs a driving video", path=driving)
    driver = open_driver(driving, options)
    session = Session(None, replace(options.session, live=False))
    progress = _Progress(driver.total, options, on_progress, "extract")
    pending: list[float] = []  # times of frames before the first face: filled with the first motion once known
    try:
        with TemplateWriter(output, driver.fps, {"source": Path(driving).name}) as writer:
            for frame in run_stages(driver.source, [*driver.stages, session_stage(session)], cancel=cancel):
                progress.step()
                if frame.motion is None:
                    pending.append(frame.time)
                    continue
                for t in pending:
                    writer.append(replace(frame.motion, valid=False), t)
                pending.clear()
                writer.append(frame.motion, frame.time)
            if not len(writer):  # raised inside the writer: nothing is written
                raise NoFaceError("no face found in any frame", path=driving)
            writer.meta["missing"] = session.missing
            frames = len(writer)
    finally:
        progress.close()
    return JobReport(Path(output), frames, session.missing, driver.fps)
