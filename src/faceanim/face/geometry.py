"""Rotations, Euler angles and robust similarity fits (pure numpy)."""

from __future__ import annotations

import numpy as np


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix from degrees, ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``.

    Axes follow the image: x right, y down, z into the screen. Positive yaw turns the face toward the
    image's right, positive pitch tilts the chin down (toward the viewer's bottom), positive roll
    rotates clockwise in the image.
    """
    y, p, r = np.deg2rad([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_euler`: (yaw, pitch, roll) in degrees."""
    yaw = np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return float(np.rad2deg(yaw)), float(np.rad2deg(pitch)), float(np.rad2deg(roll))


def fit_similarity(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted Umeyama fit of ``dst ≈ s · R @ src + t`` for point sets (N, 3); returns (s, R, t)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = w @ (xs**2).sum(1)
    scale = float((sig * d).sum() / var_s)
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def fit_similarity_robust(
    src: np.ndarray, dst: np.ndarray, iterations: int = 4, huber: float = 1.5
) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity fit with iteratively re-weighted least squares (Huber weights on residuals).

    Outlying points (an open mouth, a raised brow) pull the fit less than in plain least squares.
    """
    weights = np.ones(len(src))
    scale, rot, trans = fit_similarity(src, dst, weights)
    for _ in range(iterations):
        res = np.linalg.norm(dst - (scale * src @ rot.T + trans), axis=1)
        sigma = 1.4826 * np.median(res) + 1e-9
        r = res / (huber * sigma)
        weights = np.where(r <= 1.0, 1.0, 1.0 / np.maximum(r, 1e-9))
        scale, rot, trans = fit_similarity(src, dst, weights)
    return scale, rot, trans


def similarity_2d(scale: float, angle_rad: float, tx: float, ty: float) -> np.ndarray:
    """2×3 affine matrix of a 2D similarity."""
    c, s = scale * np.cos(angle_rad), scale * np.sin(angle_rad)
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine matrix."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to (..., 2) points; for (..., 3) points z is scaled by the affine's scale."""
    out = pts.astype(np.float64).copy()
    out[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
    if pts.shape[-1] == 3:
        out[..., 2] = pts[..., 2] * np.sqrt(abs(np.linalg.det(m[:, :2])))
    return out
