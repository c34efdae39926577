"""Square, eye-aligned face crops with the exact affine transform both ways (LivePortrait-style)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanim.face.geometry import apply_affine, invert_affine, similarity_2d
from faceanim.face.model import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS


@dataclass(frozen=True)
class CropConfig:
    """How much context around the face a crop holds (LivePortrait defaults: scale 2.3, vy -0.125)."""

    size: int = 256
    scale: float = 2.3
    vx_ratio: float = 0.0
    vy_ratio: float = -0.125
    align_roll: bool = True


@dataclass(frozen=True)
class CropTransform:
    """``matrix`` maps image pixels to crop pixels (2×3 affine); ``inverse`` maps back."""

    matrix: np.ndarray
    size: int

    @property
    def inverse(self) -> np.ndarray:
        return invert_affine(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.matrix, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.inverse, points)

    def image_box(self, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Integer (x0, y0, x1, y1) of the crop's footprint in the image, clipped to it."""
        s = self.size
        corners = self.to_image(np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64))
        h, w = image_shape[:2]
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        return max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)


def compute_crop(landmarks: np.ndarray, config: CropConfig = CropConfig()) -> CropTransform:
    """Crop transform around a face's landmarks: rotated so the eyes are level, face scaled by ``scale``."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    if config.align_roll:
        left = pts[list(LEFT_EYE_CORNERS)].mean(0)
        right = pts[list(RIGHT_EYE_CORNERS)].mean(0)
        angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
    else:
        angle = 0.0
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    upright = pts @ rot.T
    lo, hi = upright.min(0), upright.max(0)
    centre_up = 0.5 * (lo + hi)
    side = float((hi - lo).max() * config.scale)
    centre_up = centre_up + np.array([config.vx_ratio, config.vy_ratio]) * side
    centre = rot.T @ centre_up
    k = config.size / side
    # crop = k * R(-angle) @ (p - centre) + size/2
    m = similarity_2d(k, -angle, 0.0, 0.0)
    m[:, 2] = config.size / 2.0 - m[:, :2] @ centre
    return CropTransform(matrix=m, size=config.size)


def warp_to_crop(image: np.ndarray, transform: CropTransform) -> np.ndarray:
    """Cut the crop out of ``image`` (black beyond its edges, as LivePortrait); when shrinking a lot,
    area-downscale first so the crop does not alias."""
    m = transform.matrix
    if transform.scale < 0.7:
        x0, y0, x1, y1 = transform.image_box(image.shape)
        f = min(1.0, 1.5 * transform.scale)
        region = image[y0:y1, x0:x1]
        small = cv2.resize(region, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        # small px = f * (image px - (x0, y0)) (pixel-centre convention of cv2.resize)
        to_small = np.array([[f, 0, -f * x0 + 0.5 * f - 0.5], [0, f, -f * y0 + 0.5 * f - 0.5]])
        m = m.copy()
        m[:, :2] = transform.matrix[:, :2] / f
        m[:, 2] = transform.matrix[:, 2] - m[:, :2] @ to_small[:, 2]
        image = small
    return cv2.warpAffine(
        image, m, (transform.size, transform.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
