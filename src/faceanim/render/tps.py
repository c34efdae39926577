"""Deliberately naive baseline: one thin-plate spline through ~120 landmarks and fixed crop-border anchors.

No masks, no mouth interior, no stitching: it bends the background and stretches closed lips over an
open mouth. It exists to show what the analytic renderer's extra care buys.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceanim.face.analyze import SourceFace
from faceanim.motion.transfer import TargetFace
from faceanim.render.base import Renderer, RenderOutput
from faceanim.render.registry import register_renderer


def _kernel(r2: np.ndarray) -> np.ndarray:
    return np.where(r2 > 0, 0.5 * r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


def fit_tps(src: np.ndarray, dst: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """TPS mapping ``src`` control points (N, 2) onto ``dst``; returns (weights (N, 2), affine (3, 2))."""
    n = len(src)
    k = _kernel(((src[:, None] - src[None]) ** 2).sum(-1)) + reg * np.eye(n)
    p = np.hstack([np.ones((n, 1)), src])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    sol = np.linalg.solve(a, b)
    return sol[:n], sol[n:]


def eval_tps(ctrl: np.ndarray, weights: np.ndarray, affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    u = _kernel(((pts[:, None] - ctrl[None]) ** 2).sum(-1))
    return u @ weights + np.hstack([np.ones((len(pts), 1)), pts]) @ affine


@register_renderer("tps")
class NaiveTpsRenderer(Renderer):
    name = "tps"

    def __init__(self, n_points: int = 120, grid: int = 64) -> None:
        self.n_points = n_points
        self.grid = grid

    def prepare(self, source: SourceFace) -> dict:
        size = source.crop.size
        idx = np.linspace(0, 467, self.n_points).round().astype(int)
        t = np.linspace(0, size - 1, 9)
        border = np.array([(x, y) for x in t for y in (0, size - 1)] + [(x, y) for y in t[1:-1] for x in (0, size - 1)])
        g = (np.arange(self.grid) + 0.5) * size / self.grid - 0.5
        gx, gy = np.meshgrid(g, g)
        return {
            "idx": idx,
            "border": border,
            "src": np.vstack([source.state.landmarks[idx, :2], border]),
            "grid": np.stack([gx.ravel(), gy.ravel()], 1),
            "size": size,
        }

    def render(self, prepared: dict, target: TargetFace) -> RenderOutput:
        ctrl = np.vstack([target.landmarks[prepared["idx"], :2], prepared["border"]])
        w, a = fit_tps(ctrl, prepared["src"])
        coarse = eval_tps(ctrl, w, a, prepared["grid"]).reshape(self.grid, self.grid, 2).astype(np.float32)
        size = prepared["size"]
        return RenderOutput(flow=cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR))
