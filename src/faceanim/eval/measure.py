"""Measure what a frame shows (landmarks, pose, expression, ratios, foreground) for the metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanim.face.analyze import describe_face
from faceanim.face.detect import FaceLandmarker
from faceanim.face.masks import Segmenter

NAN3 = np.full((478, 3), np.nan)


@dataclass(frozen=True)
class FrameMeasure:
    landmarks: np.ndarray  # (478, 3) in the frame's pixels, NaN when no face
    angles: np.ndarray  # (3,) yaw, pitch, roll
    rotation: np.ndarray  # (3, 3)
    expression: np.ndarray  # (478, 3) canonical
    eye_open: np.ndarray  # (2,)
    lip_open: float
    foreground: np.ndarray | None

    @property
    def found(self) -> bool:
        return bool(np.isfinite(self.landmarks).all())


class FrameMeasurer:
    """Re-detects the face in an (output or ground-truth) frame from scratch, as the metrics require."""

    def __init__(self, foreground: bool = True) -> None:
        self._lm = FaceLandmarker(max_faces=1)
        self._seg = Segmenter() if foreground else None

    def close(self) -> None:
        self._lm.close()
        if self._seg is not None:
            self._seg.close()

    def __enter__(self) -> FrameMeasurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def measure(self, image: np.ndarray) -> FrameMeasure:
        faces = self._lm.detect(image, fallback=False)
        fg = self._seg.foreground(image) if self._seg is not None else None
        if not faces:
            nan = float("nan")
            return FrameMeasure(NAN3, np.full(3, nan), np.full((3, 3), nan), NAN3, np.full(2, nan), nan, fg)
        st = describe_face(faces[0].landmarks)
        return FrameMeasure(
            st.landmarks, np.array(st.angles), st.pose.rotation, st.expression, st.eye_open, st.lip_open, fg
        )
