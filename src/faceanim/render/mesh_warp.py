"""Dense backward flow from a piecewise-affine warp of a triangle mesh (the hot path of the analytic renderer)."""

from __future__ import annotations

import cv2
import numpy as np


def triangle_affines(target: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle 2×3 affines mapping target-space points to source space, and a validity flag.

    Triangles that collapse in the target (e.g. a closed eyelid) are flagged invalid and not drawn.
    """
    t = target[triangles]  # (K, 3, 2)
    s = source[triangles]
    th = np.concatenate([t.transpose(0, 2, 1), np.ones((len(t), 1, 3))], axis=1)  # (K, 3, 3) columns = vertices
    det = np.linalg.det(th)
    ok = np.abs(det) > 1e-3
    th[~ok] = np.eye(3)
    inv = np.linalg.inv(th)
    return s.transpose(0, 2, 1) @ inv, ok  # (K, 2, 3)


def rasterize_triangle_ids(target: np.ndarray, triangles: np.ndarray, order: np.ndarray, size: int) -> np.ndarray:
    """Image of triangle index + 1 per pixel (0 = none); later entries in ``order`` paint over earlier ones."""
    ids = np.zeros((size, size), np.uint16)
    pts = np.round(target[triangles] * 16).astype(np.int32)  # 4 fractional bits
    for k in order:
        cv2.fillConvexPoly(ids, pts[k], int(k) + 1, lineType=cv2.LINE_8, shift=4)
    return ids


def mesh_flow(
    target: np.ndarray, source: np.ndarray, triangles: np.ndarray, depth: np.ndarray, size: int,
    grid: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """(size, size, 2) float32 backward flow: where each output pixel comes from in the source.

    Where triangles overlap after the motion (a turned head folds the far cheek behind the nose) the one
    nearest the camera wins: triangles are painted far to near by ``depth`` (larger = farther).
    """
    affines, ok = triangle_affines(target, source, triangles)
    order = np.argsort(-depth, kind="stable")
    order = order[ok[order]]
    ids = rasterize_triangle_ids(target, triangles, order, size)
    xs, ys = grid
    m = np.concatenate([np.zeros((1, 2, 3)), affines], axis=0).astype(np.float32)  # id 0 → identity below
    m[0] = [[1, 0, 0], [0, 1, 0]]
    a = m[ids]  # (size, size, 2, 3)
    fx = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    fy = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    return np.dstack([fx, fy])
