"""The motion space the audio-to-motion network speaks: landmark groups, the subject's rest face and style
vector, per-frame audio features and window-relative head pose (shared by training and ``speak``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from faceanim.face.model import MOUTH_CORNERS, RIGID_POINTS, load_face_model

__all__ = ["LandmarkGroups", "frame_features", "landmark_groups", "pose_vector", "rest_expression",
           "style_vector"]

GAIN_TARGET = 2.0  # log-mel level the loud frames of every window are moved to (loudness invariance)
GAIN_FLOOR = -6.0  # quiet windows are not amplified beyond this reference level


@dataclass(frozen=True)
class LandmarkGroups:
    """Landmark indices of the mouth (lips and jaw below the mouth corners), eyes + brows, and style points."""

    mouth: np.ndarray
    eyes: np.ndarray
    style: np.ndarray


@lru_cache(maxsize=1)
def landmark_groups() -> LandmarkGroups:
    """The groups, from the bundled face model (55 mouth, 52 eye/brow, 149 style points)."""
    m = load_face_model()
    g, c = m.groups, m.canonical
    lips = set(g["outer_lips"].tolist()) | set(g["inner_lips"].tolist())
    below = c[list(MOUTH_CORNERS), 1].mean()
    jaw = {int(i) for i in g["face_oval"] if c[i, 1] > below}
    mouth = np.array(sorted(lips | jaw))
    eyes = np.array(sorted({int(i) for k in ("left_eye", "right_eye", "left_eyebrow", "right_eyebrow")
                            for i in g[k]}))
    style = np.array(sorted(set(mouth.tolist()) | set(eyes.tolist()) | {int(i) for i in g["face_oval"]}
                            | set(RIGID_POINTS)))
    return LandmarkGroups(mouth, eyes, style)


def rest_expression(expression: np.ndarray, lip_open: np.ndarray, quantile: float = 0.2) -> np.ndarray:
    """A clip's resting face: the median canonical expression over its most closed-mouth frames."""
    lip = np.asarray(lip_open, np.float64)
    keep = lip <= np.quantile(lip, quantile)
    return np.median(np.asarray(expression, np.float64)[keep], axis=0)


def style_vector(rest: np.ndarray) -> np.ndarray:
    """Subject style input v_s: the rest face's style points, flattened (canonical units)."""
    return np.asarray(rest, np.float32)[landmark_groups().style].reshape(-1)


def frame_features(mel: np.ndarray, mels_per_frame: int = 4) -> np.ndarray:
    """Log-mel ``(mels_per_frame·T, n_mels)`` → per-video-frame features ``(T, mels_per_frame·n_mels)``,
    with the window's loud frames moved to a fixed level (so a quiet recording moves the lips as much)."""
    mel = np.asarray(mel, np.float32)
    t = len(mel) // mels_per_frame
    x = mel[: t * mels_per_frame]
    if t == 0:
        return np.zeros((0, mels_per_frame * mel.shape[1]), np.float32)
    level = float(np.percentile(x.mean(1), 90))
    x = x + (GAIN_TARGET - max(level, GAIN_FLOOR))
    return x.reshape(t, -1)


def pose_vector(angles: np.ndarray, translation: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Head pose relative to the window's mean ``(T, 6)``: yaw, pitch, roll in 10° units, x and y shift in
    face radii, log scale ratio."""
    a = np.asarray(angles, np.float64)
    tr = np.asarray(translation, np.float64)
    s = np.asarray(scale, np.float64).reshape(-1)
    ms = s.mean()
    out = np.empty((len(a), 6), np.float32)
    out[:, :3] = (a - a.mean(0)) / 10.0
    out[:, 3:5] = (tr[:, :2] - tr[:, :2].mean(0)) / ms
    out[:, 5] = np.log(s / ms)
    return out
