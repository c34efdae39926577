"""``Motion`` (what a driver does in one frame, independent of who performs it) and ``TargetFace`` (what the
source should look like in one output frame)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanim.face.analyze import FaceState
from faceanim.face.geometry import euler_from_rotation


@dataclass(frozen=True)
class Motion:
    """Head pose (rotation, translation in the performer's pixels, scale), canonical expression, eye/lip ratios.

    ``valid`` is False for frames where the face was not seen (values are held or interpolated).
    """

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)
    scale: float
    expression: np.ndarray  # (478, 3), canonical units
    eye_open: np.ndarray  # (left, right)
    lip_open: float
    gaze: np.ndarray  # (left_x, left_y, right_x, right_y)
    valid: bool = True

    @classmethod
    def from_state(cls, state: FaceState, valid: bool = True) -> Motion:
        return cls(
            rotation=state.pose.rotation,
            translation=np.asarray(state.pose.translation, np.float64),
            scale=float(state.pose.scale),
            expression=state.expression,
            eye_open=np.asarray(state.eye_open, np.float64),
            lip_open=float(state.lip_open),
            gaze=np.asarray(state.gaze, np.float64),
            valid=valid,
        )

    @property
    def angles(self) -> tuple[float, float, float]:
        return euler_from_rotation(self.rotation)


@dataclass(frozen=True)
class TargetFace:
    """The source face as it should look in one output frame, in source-crop pixels.

    ``landmarks = scale · expression @ rotation.T + translation``; ``eye_open``/``lip_open`` are measured on
    ``expression``.
    """

    landmarks: np.ndarray  # (478, 3)
    rotation: np.ndarray  # (3, 3)
    scale: float
    translation: np.ndarray  # (3,)
    expression: np.ndarray  # (478, 3), canonical units
    eye_open: np.ndarray  # (left, right)
    lip_open: float
