"""Drivers: every kind of driving input becomes the same stream of ``Motion`` (video, image, template)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceanim.face.analyze import describe_face, select_face
from faceanim.face.detect import FaceLandmarker
from faceanim.face.track import FaceTracker, TrackerConfig, TrackStatus
from faceanim.media.video import iter_video
from faceanim.motion.templates import TemplateReader
from faceanim.motion.types import Motion


@dataclass(frozen=True)
class DrivingFrame:
    """One step of a driver: its motion (None while no face has been seen yet) and, for videos, the frame."""

    index: int
    time: float
    motion: Motion | None
    status: str
    image: np.ndarray | None = None


def drive_from_video(
    path: str | Path,
    tracker: TrackerConfig = TrackerConfig(),
    max_frames: int | None = None,
    every: int = 1,
    keep_images: bool = False,
) -> Iterator[DrivingFrame]:
    """Track the driver's face frame by frame (streaming; memory bounded for any length).

    Frames without a face hold the last seen motion and are marked ``missing`` (``valid=False``).
    """
    with FaceTracker(tracker) as tr:
        for vf in iter_video(path, max_frames=max_frames, every=every):
            tf = tr.update(vf.image, vf.index, vf.time)
            motion = None if tf.state is None else Motion.from_state(tf.state, valid=tf.has_face)
            yield DrivingFrame(vf.index, vf.time, motion, tf.status.value, vf.image if keep_images else None)


def drive_from_template(path: str | Path) -> tuple[Fraction, Iterator[DrivingFrame], int]:
    """Motion saved by ``faceanim extract-motion``: its frame rate, a stream of frames at their saved times
    (decompressed once, in chunks: memory bounded for any length) and the frame count. A bad file fails here."""
    reader = TemplateReader(path)

    def frames() -> Iterator[DrivingFrame]:
        with reader:
            for i, (t, m) in enumerate(reader.timed()):
                yield DrivingFrame(i, t, m, "template" if m.valid else TrackStatus.MISSING.value)

    return reader.fps, frames(), len(reader)


def motion_from_image(image: np.ndarray, path: str | None = None, face_index: int = 0) -> Motion:
    """The motion of a single driving image."""
    with FaceLandmarker() as lm:
        face = select_face(lm.detect(image), face_index, path)
    return Motion.from_state(describe_face(face.landmarks))


