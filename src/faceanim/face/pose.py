"""Head pose and pose-free (canonical-space) expression from 3D landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanim.face.geometry import euler_from_rotation, fit_similarity_robust
from faceanim.face.model import RIGID_POINTS, FaceModel, load_face_model


@dataclass(frozen=True)
class HeadPose:
    """``landmarks ≈ scale · rotation @ canonical + translation`` in the landmarks' pixel frame."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    @property
    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees; see :func:`faceanim.face.geometry.rotation_from_euler`."""
        return euler_from_rotation(self.rotation)

    def apply(self, canonical_points: np.ndarray) -> np.ndarray:
        """Place canonical-space points (N, 3) in the image frame."""
        return self.scale * canonical_points @ self.rotation.T + self.translation

    def remove(self, points: np.ndarray) -> np.ndarray:
        """Bring image-frame points (N, 3) back to canonical space."""
        return (points - self.translation) @ self.rotation / self.scale


def estimate_head_pose(landmarks: np.ndarray, model: FaceModel | None = None) -> HeadPose:
    """Fit the canonical face to 478 3D landmarks (x, y, z in pixels) with a robust similarity fit.

    Only points that barely move with expression take part, so smiles and open mouths do not tilt
    the estimated head.
    """
    model = model or load_face_model()
    idx = np.asarray(RIGID_POINTS)
    scale, rot, trans = fit_similarity_robust(model.canonical[idx], np.asarray(landmarks, np.float64)[idx])
    return HeadPose(rotation=rot, translation=trans, scale=scale)


def canonical_expression(landmarks: np.ndarray, pose: HeadPose) -> np.ndarray:
    """Landmarks with the head pose removed: comparable across frames and people (units of the face model)."""
    return pose.remove(np.asarray(landmarks, np.float64))
