"""File-to-file jobs behind the CLI, app and server: ``animate_file`` and ``extract_motion``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from faceanim.errors import FaceAnimError, MediaError, NoFaceError
from faceanim.face.analyze import prepare_source_face
from faceanim.face.detect import DetectedFace, landmark_box
from faceanim.face.masks import Segmenter
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image, write_image
from faceanim.media.kinds import is_image_path, is_video_path
from faceanim.media.provenance import provenance_metadata
from faceanim.media.video import VideoWriter, iter_video, probe_video
from faceanim.motion.templates import BUNDLED_TEMPLATES, MotionTemplate, procedural_template, save_template
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig, PreparedFace
from faceanim.pipeline.drive import DrivingFrame, drive_from_template, drive_from_video, motion_from_image
from faceanim.render.paste import plan_paste
from faceanim.render.registry import create_renderer

TEMPLATE_PREFIX = "template:"


@dataclass(frozen=True)
class JobOptions:
    animator: AnimatorConfig = field(default_factory=AnimatorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    face_index: int | Literal["all"] = 0
    audio: bool = True  # mux the driving video's audio (or ``audio_path``)
    audio_path: str | None = None
    provenance: bool = True
    max_frames: int | None = None
    progress: bool = True


@dataclass(frozen=True)
class JobReport:
    output: Path
    frames: int
    missing_frames: int  # driving frames without a face (held motion, or the neutral source)
    fps: Fraction | None


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
    """A driving input opened once: its frame rate, motion stream, frame count (if known) and audio."""

    fps: Fraction
    frames: Iterator[DrivingFrame]
    total: int | None
    has_audio: bool


def open_driver(path: str, options: JobOptions) -> Driver:
    """Any non-image driver as a stream of motions (bundled template, motion .npz or video)."""
    if path.startswith(TEMPLATE_PREFIX):
        tpl = procedural_template(path[len(TEMPLATE_PREFIX):])
        frames = (DrivingFrame(i, float(i / tpl.fps), m, "template") for i, m in enumerate(tpl.motions))
        return Driver(tpl.fps, frames, len(tpl), False)
    if path.lower().endswith(".npz"):
        fps, frames = drive_from_template(path)
        return Driver(fps, frames, None, False)
    info = probe_video(path)
    n = info.frame_count
    total = min(n, options.max_frames) if (n and options.max_frames) else n
    return Driver(info.fps, drive_from_video(path, options.tracker, max_frames=options.max_frames), total,
                  info.has_audio)


def check_output_path(output: str, *inputs: str) -> None:
    """Refuse an output path that is one of the inputs (the atomic rename would silently replace it)."""
    out = Path(output).resolve()
    for p in inputs:
        if not p.startswith(TEMPLATE_PREFIX) and Path(p).exists() and Path(p).resolve() == out:
            raise FaceAnimError("output path is the same file as an input; choose another name", path=output)


def animate_file(source: str, driving: str, output: str, options: JobOptions = JobOptions()) -> JobReport:
    """Animate the portrait ``source`` with ``driving`` and write ``output`` (video, or image for an image driver)."""
    check_output_path(output, source, driving, *([options.audio_path] if options.audio_path else []))
    kind = driving_kind(driving)
    src_path = Path(source)
    if not src_path.exists():
        raise MediaError("no such file", path=source)
    if is_video_path(src_path):
        return _video_to_video(source, driving, output, options)
    image = read_image(source)
    animator = Animator.prepare(image, options.animator, options.face_index, path=source)
    if kind == "image":
        drv_img = read_image(driving)
        motion = motion_from_image(drv_img, path=driving)
        result = animator.animate(motion, animator.image_reference(motion))
        write_image(output, result.image, _metadata(options, source=src_path.name, driving=Path(driving).name))
        return JobReport(Path(output), 1, 0, None)

    driver = open_driver(driving, options)
    audio = None
    if options.audio:
        audio = options.audio_path or (driving if driver.has_audio else None)
    reference: Motion | None = None
    n = missing = 0
    with VideoWriter(output, driver.fps, audio=audio, metadata=_metadata(options)) as writer:
        for df in tqdm(driver.frames, total=driver.total, disable=not options.progress, unit="frame",
                       desc="animate"):
            if options.max_frames is not None and n >= options.max_frames:
                break
            if df.motion is None or not df.motion.valid:
                missing += 1
            if df.motion is None:
                writer.write(animator.neutral())
            else:
                if reference is None:
                    reference = df.motion
                writer.write(animator.animate(df.motion, reference).image)
            n += 1
        if reference is None:  # raised inside the writer: the temp file is discarded, nothing is renamed
            raise NoFaceError("no face found in any driving frame", path=driving)
    return JobReport(Path(output), n, missing, driver.fps)


def _video_to_video(source: str, driving: str, output: str, options: JobOptions) -> JobReport:
    """Re-animate the head in each frame of a source video (portrait video editing): the source keeps its
    own head motion; the driver's expression changes are added on top."""
    if driving_kind(driving) == "image":
        raise FaceAnimError("a source video needs a driving video or motion template, not an image", path=driving)
    info = probe_video(source)
    acfg = replace(options.animator, transfer=replace(options.animator.transfer, pose=False), crop_only=False)
    renderer = create_renderer(acfg.renderer)
    drv_frames = open_driver(driving, options).frames
    audio = None
    if options.audio:
        audio = options.audio_path or (source if info.has_audio else None)
    reference: Motion | None = None
    n = missing = 0
    drv_iter = iter(drv_frames)
    animator: Animator | None = None
    with FaceTracker(options.tracker) as tracker, Segmenter() as seg, VideoWriter(
        output, info.fps, audio=audio, metadata=_metadata(options, mode="video-to-video")
    ) as writer:
        total = min(info.frame_count, options.max_frames) if (info.frame_count and options.max_frames) else \
            info.frame_count
        for vf in tqdm(iter_video(source, max_frames=options.max_frames), total=total,
                       disable=not options.progress, unit="frame", desc="video-to-video"):
            df = next(drv_iter, None)
            if df is None:
                break
            tf = tracker.update(vf.image, vf.index, vf.time)
            if df.motion is not None and reference is None:
                reference = df.motion
            if tf.state is None or not tf.has_face or df.motion is None or reference is None:
                missing += 1
                writer.write(vf.image)
                n += 1
                continue
            lms = tf.state.landmarks
            det = DetectedFace(lms, landmark_box(lms))
            src = prepare_source_face(vf.image, det, seg, acfg.crop)
            face = PreparedFace(src, renderer.prepare(src), plan_paste(src, acfg.paste))
            if animator is None:
                animator = Animator([face], renderer, acfg)
            animator.faces = [face]  # the source face changes every frame; the driver's state carries over
            writer.write(animator.animate(df.motion, reference).image)
            n += 1
    if n == 0:
        raise MediaError("no frames", path=source)
    return JobReport(Path(output), n, missing, info.fps)


def extract_motion(driving: str, output: str, options: JobOptions = JobOptions()) -> JobReport:
    """Save a driving video's per-frame motion as a template (``.npz``), without any of its pixels."""
    check_output_path(output, driving)
    if driving_kind(driving) != "video":
        raise MediaError("extract-motion needs a driving video", path=driving)
    motions: list[Motion] = []
    pending = 0  # frames before the first face: filled with the first motion once it is known
    missing = 0
    driver = open_driver(driving, options)
    for df in tqdm(driver.frames, total=driver.total, disable=not options.progress, unit="frame", desc="extract"):
        if df.motion is None:
            pending += 1
            missing += 1
            continue
        if pending:
            motions += [replace(df.motion, valid=False)] * pending
            pending = 0
        if not df.motion.valid:
            missing += 1
        motions.append(df.motion)
    if not motions:
        raise NoFaceError("no face found in any frame", path=driving)
    save_template(output, MotionTemplate(motions, driver.fps, {"source": Path(driving).name, "missing": missing}))
    return JobReport(Path(output), len(motions), missing, driver.fps)
