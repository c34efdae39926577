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
    # Solve s_i = A @ [t_i, 1] for each triangle in closed form: with edge vectors e1 = t1 - t0, e2 = t2 - t0
    # and f1 = s1 - s0, f2 = s2 - s0, the linear part is [f1 f2] @ inv([e1 e2]).
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    f1, f2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-3
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # inv([e1 e2]) = [[e2y, -e2x], [-e1y, e1x]] / det
    lin = np.empty((len(t), 2, 2))
    for r in range(2):
        lin[:, r, 0] = (f1[:, r] * e2[:, 1] - f2[:, r] * e1[:, 1]) * inv_det
        lin[:, r, 1] = (-f1[:, r] * e2[:, 0] + f2[:, r] * e1[:, 0]) * inv_det
    trans = s[:, 0] - np.einsum("kij,kj->ki", lin, t[:, 0])
    return np.concatenate([lin, trans[:, :, None]], axis=2), ok  # (K, 2, 3)


def rasterize_triangle_ids(target: np.ndarray, triangles: np.ndarray, order: np.ndarray, size: int) -> np.ndarray:
    """Image of triangle index + 1 per pixel (0 = none); later entries in ``order`` paint over earlier ones."""
    ids = np.zeros((size, size), np.uint16)
    pts = np.round(target[triangles[order]] * 16).astype(np.int32)  # 4 fractional bits
    fill = cv2.fillConvexPoly
    for poly, value in zip(list(pts), (order + 1).tolist(), strict=True):  # plain Python values: less call overhead
        fill(ids, poly, value, cv2.LINE_8, 4)
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
    coef = np.empty((6, len(affines) + 1), np.float32)  # id 0 (no triangle) is the identity
    coef[:, 0] = (1, 0, 0, 0, 1, 0)
    coef[:, 1:] = affines.reshape(-1, 6).T
    c = coef[:, ids]  # (6, size, size)
    flow = np.empty((size, size, 2), np.float32)
    flow[..., 0] = c[0] * xs + c[1] * ys + c[2]
    flow[..., 1] = c[3] * xs + c[4] * ys + c[5]
    return flow
