"""Eye-open and lip-open ratios and gaze: LivePortrait-style scalar conditions, measured on landmarks."""

from __future__ import annotations

import numpy as np

from faceanim.face.model import (
    INNER_LIP_PAIRS,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LIDS,
    LEFT_IRIS_CENTER,
    MOUTH_CORNERS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LIDS,
    RIGHT_IRIS_CENTER,
)


def _down_axis(points: np.ndarray) -> np.ndarray:
    """Unit vector (..., 2) pointing from the eyes toward the mouth, perpendicular to the eye line."""
    across = points[..., list(LEFT_EYE_CORNERS), :2].mean(-2) - points[..., list(RIGHT_EYE_CORNERS), :2].mean(-2)
    down = np.stack([-across[..., 1], across[..., 0]], axis=-1)
    return down / np.maximum(np.linalg.norm(down, axis=-1, keepdims=True), 1e-9)


def _gap(points: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Signed mean distance from upper to lower point along the face's down axis (< 0: the two crossed)."""
    up = points[..., [a for a, _ in pairs], :2]
    lo = points[..., [b for _, b in pairs], :2]
    return ((lo - up) * _down_axis(points)[..., None, :]).sum(-1).mean(-1)


def _dist(points: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)


def eye_open_ratios(points: np.ndarray) -> np.ndarray:
    """(left, right) eyelid gap divided by eye width; ~0.25–0.35 open, < 0.1 closed. Works on (..., 478, 2|3).

    Gaps are signed (negative when the lids cross), so retargeting never mistakes crossed lids for open ones.
    """
    left = _gap(points, LEFT_EYE_LIDS) / _dist(points, *LEFT_EYE_CORNERS)
    right = _gap(points, RIGHT_EYE_LIDS) / _dist(points, *RIGHT_EYE_CORNERS)
    return np.stack([left, right], axis=-1)


def lip_open_ratio(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap divided by mouth width (corner to corner); 0 closed, ~0.5+ wide open, < 0 lips crossed."""
    return _gap(points, INNER_LIP_PAIRS) / _dist(points, *MOUTH_CORNERS)


def gaze_offsets(points: np.ndarray) -> np.ndarray:
    """Iris centre relative to its eye centre, in eye widths: (left_x, left_y, right_x, right_y)."""
    out = []
    for iris, corners in ((LEFT_IRIS_CENTER, LEFT_EYE_CORNERS), (RIGHT_IRIS_CENTER, RIGHT_EYE_CORNERS)):
        centre = 0.5 * (points[..., corners[0], :2] + points[..., corners[1], :2])
        width = _dist(points[..., :2], *corners)[..., None]
        out.append((points[..., iris, :2] - centre) / width)
    return np.concatenate(out, axis=-1)
