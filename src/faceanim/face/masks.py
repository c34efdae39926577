"""Masks at crop resolution: foreground (selfie segmentation), face region, facial parts, landmark heatmap."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanim.face.model import FaceModel, load_face_model

PART_GROUPS = {
    "left_eye": ("left_eye",),
    "right_eye": ("right_eye",),
    "brows": ("left_eyebrow", "right_eyebrow"),
    "lips": ("outer_lips",),
    "mouth": ("inner_lips",),
}


@dataclass(frozen=True)
class FaceMasks:
    """Float32 masks in [0, 1] of one image (usually a crop)."""

    foreground: np.ndarray
    face: np.ndarray
    parts: dict[str, np.ndarray]
    heatmap: np.ndarray


def polygon_mask(points: np.ndarray, shape: tuple[int, int], hull: bool = False) -> np.ndarray:
    """Filled polygon (or its convex hull) of 2D points, float32 {0, 1}, anti-aliased edges."""
    pts = np.asarray(points, np.float64)[:, :2]
    if hull:
        pts = cv2.convexHull(pts.astype(np.float32))[:, 0]
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def face_region_mask(landmarks: np.ndarray, shape: tuple[int, int], model: FaceModel | None = None) -> np.ndarray:
    """The face inside its oval (forehead to chin, ear to ear)."""
    model = model or load_face_model()
    return polygon_mask(landmarks[model.group("face_oval")], shape, hull=True)


def part_masks(landmarks: np.ndarray, shape: tuple[int, int], model: FaceModel | None = None) -> dict[str, np.ndarray]:
    """Eyes, brows (hull of each brow), lips (outer contour) and mouth interior (inner contour)."""
    model = model or load_face_model()
    out = {}
    for name, groups in PART_GROUPS.items():
        m = np.zeros(shape, np.float32)
        for g in groups:
            m = np.maximum(m, polygon_mask(landmarks[model.group(g)], shape, hull=name == "brows"))
        out[name] = m
    return out


def landmark_heatmap(landmarks: np.ndarray, shape: tuple[int, int], sigma: float = 1.5) -> np.ndarray:
    """Gaussian splats at every landmark, peak 1: the landmark image a dense-motion network takes as input."""
    img = np.zeros(shape, np.float32)
    pts = np.round(landmarks[:, :2]).astype(int)
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < shape[0])
    img[pts[ok, 1], pts[ok, 0]] = 1.0
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img / max(float(img.max()), 1e-6)


class Segmenter:
    """Foreground (person) probability from mediapipe's bundled selfie segmentation."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def close(self) -> None:
        self._seg.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def foreground(self, image: np.ndarray) -> np.ndarray:
        """Float32 HxW probability that a pixel belongs to the person."""
        mask = self._seg.process(np.ascontiguousarray(image)).segmentation_mask
        return np.clip(mask.astype(np.float32), 0.0, 1.0)


def compute_masks(image: np.ndarray, landmarks: np.ndarray, segmenter: Segmenter) -> FaceMasks:
    """All masks of one crop."""
    shape = image.shape[:2]
    return FaceMasks(
        foreground=segmenter.foreground(image),
        face=face_region_mask(landmarks, shape),
        parts=part_masks(landmarks, shape),
        heatmap=landmark_heatmap(landmarks, shape),
    )
