"""Landmarks per video frame: tracking, re-detection and explicit missing frames (smoothing is the session's)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from faceanim.face.analyze import FaceState, describe_face
from faceanim.face.detect import DetectedFace, FaceLandmarker
from faceanim.face.smoothing import OneEuroFilter


class TrackStatus(StrEnum):
    DETECTED = "detected"  # first sighting, or found again after a loss
    TRACKED = "tracked"
    MISSING = "missing"  # no face: the last state is held (and the frame reported)


@dataclass(frozen=True)
class TrackerConfig:
    """``smoothing`` here is a causal One-Euro filter on the landmarks, off by default: file jobs and live input
    are smoothed by the session (``faceanim.pipeline.session``), zero-phase where the whole video is known."""

    face_index: int = 0
    smoothing: float = 0.0  # 0 = off; larger = smoother (scales the One-Euro cutoff down)
    redetect_every: int = 5  # frames between full re-detections while the face is lost
    describe: bool = True  # also compute pose/expression (``TrackedFrame.state``); off when only landmarks are needed


@dataclass(frozen=True)
class TrackedFrame:
    index: int
    time: float
    status: TrackStatus
    state: FaceState | None  # None only before the face was ever seen (or with ``describe=False``)
    landmarks: np.ndarray | None = None  # this frame's landmarks; None when the face is missing

    @property
    def has_face(self) -> bool:
        return self.status is not TrackStatus.MISSING


class FaceTracker:
    """Follow one face through a video; feed frames in order with :meth:`update`."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        # Track exactly as many faces as needed: asking mediapipe for more makes it run its detector every
        # frame looking for the faces that are not there.
        self._mesh = FaceLandmarker(max_faces=config.face_index + 1, tracking=True)
        self._detector: FaceLandmarker | None = None
        self._filter = OneEuroFilter(min_cutoff=2.0 / max(config.smoothing, 1e-3), beta=0.3)
        self._last_box: np.ndarray | None = None
        self._last_state: FaceState | None = None
        self._lost_for = 0
        self._unit: float | None = None

    def close(self) -> None:
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _choose(self, faces: list[DetectedFace]) -> DetectedFace | None:
        if not faces:
            return None
        if self._last_box is None:  # first sighting: the requested face, by size, or nothing yet
            return faces[self.config.face_index] if self.config.face_index < len(faces) else None
        centre = 0.5 * (self._last_box[:2] + self._last_box[2:])
        return min(faces, key=lambda f: float(np.linalg.norm(0.5 * (f.box[:2] + f.box[2:]) - centre)))

    def update(self, image: np.ndarray, index: int, time: float) -> TrackedFrame:
        faces = self._mesh.detect(image)
        if not faces and self._lost_for % self.config.redetect_every == 0:
            if self._detector is None:
                self._detector = FaceLandmarker(max_faces=self.config.face_index + 1)
            faces = self._detector.detect(image)
        face = self._choose(faces)
        if face is None:
            self._lost_for += 1
            self._filter.reset()
            self._unit = None
            return TrackedFrame(index, time, TrackStatus.MISSING, self._last_state)
        status = TrackStatus.TRACKED if self._lost_for == 0 and self._last_state is not None else TrackStatus.DETECTED
        self._lost_for = 0
        self._last_box = face.box
        landmarks = face.landmarks
        if self.config.smoothing > 0:
            # One unit per tracked segment: filtering in face-size units makes the filter's speed threshold
            # independent of resolution, and a fixed unit keeps box-size noise out of the positions.
            if self._unit is None:
                self._unit = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0))
            landmarks = self._filter(landmarks / self._unit, time) * self._unit
        if self.config.describe:
            self._last_state = describe_face(landmarks)
        return TrackedFrame(index, time, status, self._last_state, landmarks)
