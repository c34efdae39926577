"""The ``mobileportrait`` renderer: MobilePortrait's network refining the analytic renderer's warp.

Per source: the analytic renderer's preparation (mesh, inpainted background) and the network's source
encoding (neural keypoints, masks, pseudo multi-view features). Per frame: the analytic crop and mesh flow
are the prior; the network synthesises a 128² window around the mouth (the CPU tier; ``-full``: the whole
256² crop), returned as a layer over the analytic output where it changes it (never over the eyes), which
paste-back enlarges into the frame. The default renderer wherever torch and the weights are installed.
Weights are the shipped ``weights/mobileportrait_cpu.safetensors`` (``FACEANIM_WEIGHTS`` names another
folder); nothing is downloaded. ``mobileportrait-onnx`` runs the per-frame network in onnxruntime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceanim.errors import FaceAnimError
from faceanim.face.analyze import SourceFace
from faceanim.face.model import LEFT_EYE_LIDS, RIGHT_EYE_LIDS
from faceanim.motion.transfer import TargetFace
from faceanim.render.analytic import AnalyticRenderer
from faceanim.render.base import Overlay, Renderer, RenderOutput, mask_box, render_crop
from faceanim.render.registry import register_renderer

DEFAULT_WEIGHTS = "mobileportrait_cpu.safetensors"
MOUTH_WINDOW = 128  # the CPU tier synthesises this square around the mouth (a quarter of the crop's FLOPs)
# The overlay is opaque where the network differs from the analytic crop by this many grey levels. Picked on
# 6 training clips (16 frames each, the session-2 weights at step 15,462, paste-back with bicubic enlargement
# and unsharp pre-compensation): tau 10/15/25/40/60 gave PSNR +0.63/+0.63/+0.61/+0.58/+0.54 dB over analytic,
# mouth PSNR +1.11/+1.10/+1.05/+0.94/+0.82 dB and a median sharpness ratio 0.750/0.739/0.723/0.708/0.692
# (analytic 0.728): a low threshold lets the network's pixels replace the prior wherever it changes them,
# instead of half-blending two images that do not line up. (Session 2 had picked 60 with bilinear
# paste-back, which softened every network pixel.)
OVERLAY_TAU = 10.0


def weights_dir() -> Path:
    """Where shipped weights live: ``$FACEANIM_WEIGHTS`` or the checkout's ``weights/`` folder."""
    env = os.environ.get("FACEANIM_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "weights"



@dataclass(frozen=True)
class PreparedMobilePortrait:
    source: SourceFace
    analytic: Any  # PreparedAnalytic
    code: dict  # the network's per-source tensors
    window_views: dict = field(default_factory=dict)  # (y0, x0) -> that window's pseudo multi-view features


class MobilePortraitRenderer(Renderer):
    """``backend``: ``torch`` (the U-Nets' convolutions in bf16 where the CPU has native bf16, else fp32;
    ``bf16`` forces either) or ``onnx`` (onnxruntime, fp32).
    ``threads``: intra-op threads for the network (default: half the cores, at least 1: the pipeline decodes,
    tracks and encodes on other threads, and oversubscribed OpenMP threads spin; on a loaded 2-core machine
    2 threads measured 13× slower than 1). ``window``: synthesise only a ``window``² square around the mouth
    (the CPU tier; training also synthesises patches) and keep the analytic pixels elsewhere; ``None``: the
    whole crop."""

    name = "mobileportrait"

    def __init__(self, weights: str | Path | None = None, backend: str = "torch", threads: int | None = None,
                 bf16: bool | None = None, output: str = "overlay", tau: float = OVERLAY_TAU,
                 window: int | None = MOUTH_WINDOW, keep_eyes: bool = True) -> None:
        try:
            import torch
        except ModuleNotFoundError as exc:
            raise FaceAnimError("the mobileportrait renderer needs torch: pip install 'faceanim[train]'") from exc
        from faceanim.models.mobileportrait.config import FK_INDICES, LIP_INDICES
        from faceanim.train.export import load_model

        path = Path(weights) if weights is not None else weights_dir() / DEFAULT_WEIGHTS
        if not path.is_file():
            raise FaceAnimError("mobileportrait weights not found (train them or set FACEANIM_WEIGHTS)", path=path)
        self.torch = torch
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self.model = load_model(path)
        self.fk, self.lips = FK_INDICES, LIP_INDICES
        # bf16 for the two U-Nets' convolutions only (layers.unet_precision), where the CPU has native bf16:
        # validation metrics equal to fp32's to 0.003 (PSNR 24.688 both), end to end 25.9 vs 22.9 FPS (benchmark
        # clip, quiet 2-core machine, one sitting); a global autocast wrecked the output (PSNR 16.6 dB)
        self.bf16 = (cpu_has_bf16() and backend == "torch") if bf16 is None else bf16
        self.model.dense_motion.bf16 = self.model.synthesis.bf16 = self.bf16
        self.analytic = AnalyticRenderer()
        if output not in ("overlay", "crop"):
            raise FaceAnimError(f"unknown output {output!r} (overlay or crop)")
        self.output, self.tau, self.keep_eyes = output, tau, keep_eyes
        size = self.model.config.size
        if window is not None and (window % 16 or not 16 <= window <= size):
            raise FaceAnimError(f"window must be a multiple of 16 up to {size}, not {window}")
        self.window = None if window is None or window >= size or output == "crop" else window
        self.taper = window_taper(self.window) if self.window else None
        self.session = None
        if backend == "onnx":
            from faceanim.train.export import export_bytes, onnx_session

            self.session = onnx_session(export_bytes(self.model, self.window), self.threads)
        elif backend != "torch":
            raise FaceAnimError(f"unknown backend {backend!r} (torch or onnx)")

    def _tensor(self, image: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(image)).float() / 255.0
        return (t.permute(2, 0, 1) if t.ndim == 3 else t[None])[None]

    def _keypoints(self, landmarks: np.ndarray, size: int):
        pts = np.asarray(landmarks, np.float32)[self.fk, :2] * (2.0 / (size - 1)) - 1.0
        return self.torch.from_numpy(pts)[None]

    def prepare(self, source: SourceFace) -> PreparedMobilePortrait:
        size = source.crop.size
        if size != self.model.config.size:
            raise FaceAnimError(f"mobileportrait renders {self.model.config.size}² crops, not {size}² "
                                f"(choose crop size {self.model.config.size} or another renderer)")
        prep = self.analytic.prepare(source)
        fg = np.round(source.masks.foreground * 255).astype(np.uint8)
        torch = self.torch
        torch.set_num_threads(self.threads)
        with torch.no_grad():
            code = self.model.encode_source(self._tensor(source.crop_image), self._tensor(fg),
                                            self._tensor(prep.background), self._keypoints(source.state.landmarks,
                                                                                           size))
        return PreparedMobilePortrait(source, prep, code)

    def frame_inputs(self, prepared: PreparedMobilePortrait, target: TargetFace
                     ) -> tuple[list, RenderOutput, np.ndarray]:
        """The per-frame network's inputs (FrameNetwork.INPUTS order) for one target, the analytic output and
        its crop (the base)."""
        from faceanim.models.mobileportrait.model import SOURCE_KEYS

        out = self.analytic.render(prepared.analytic, target)
        base = render_crop(prepared.source, out)
        size, m = prepared.source.crop.size, self.model.config.motion_size
        flow = out.flow
        if out.flow_weight is not None:  # the prior as trained: the mesh flow, still where the background is
            w = out.flow_weight[..., None]
            flow = flow * w + prepared.analytic.grid_xy * (1.0 - w)
        prior = cv2.resize(flow, (m, m), interpolation=cv2.INTER_AREA) * (2.0 / (size - 1)) - 1.0
        code = dict(prepared.code)
        tail = []
        if self.window:
            y0, x0 = origin = self.window_origin(target.landmarks, size)
            if self.model.config.views:
                if origin not in prepared.window_views:
                    prepared.window_views[origin] = self.model.window_views(code["view_input"], y0, x0, self.window)
                code["view_feats"] = prepared.window_views[origin]
            tail = [self.torch.tensor([y0, x0], dtype=self.torch.int64)]
        inputs = [code[k] for k in SOURCE_KEYS] + [self._tensor(base), self.torch.from_numpy(prior)[None],
                                                    self._keypoints(target.landmarks, size)] + tail
        return inputs, out, base

    def window_origin(self, landmarks: np.ndarray, size: int) -> tuple[int, int]:
        """(y0, x0) of the synthesis window: centred on the mouth, on the 16-pixel lattice training used."""
        cx, cy = np.asarray(landmarks, np.float32)[self.lips, :2].mean(0)
        span = size - self.window

        def snap(v: float) -> int:
            return int(np.clip(round((v - self.window / 2) / 16) * 16, 0, span))

        return snap(float(cy)), snap(float(cx))

    def render(self, prepared: PreparedMobilePortrait, target: TargetFace) -> RenderOutput:
        inputs, analytic, base = self.frame_inputs(prepared, target)
        torch = self.torch
        if self.session is not None:
            from faceanim.train.export import run_session

            image = run_session(self.session, inputs)[0]
        else:
            with torch.no_grad():
                if self.window:
                    y0, x0 = (int(v) for v in inputs[-1])
                    result = self.model.frame(*inputs[:-1], patch=(y0, x0, self.window))
                else:
                    result = self.model.frame(*inputs)
                image = result["image"][0].float().clamp(0.0, 1.0).numpy()
        crop = (np.transpose(image, (1, 2, 0)) * 255.0 + 0.5).astype(np.uint8)
        if self.output == "crop":
            return RenderOutput(crop=crop)
        if not self.window:
            return self.as_overlay(analytic, base, crop, self.tau)
        y0, x0 = (int(v) for v in inputs[-1])
        w = self.window
        taper = self.taper
        if self.keep_eyes:
            taper = taper * below_eyes(target.landmarks, base.shape[0])[y0:y0 + w, None]
        return self.as_overlay(analytic, base[y0:y0 + w, x0:x0 + w], crop, self.tau, taper, origin=(x0, y0))

    @staticmethod
    def as_overlay(analytic: RenderOutput, base: np.ndarray, crop: np.ndarray, tau: float = OVERLAY_TAU,
                   taper: np.ndarray | None = None, origin: tuple[int, int] = (0, 0)) -> RenderOutput:
        """The network's pixels as a layer over the analytic output, opaque where they differ from the analytic
        crop by ``tau`` grey levels or more and clear where they agree: paste-back then still resamples the
        full-resolution source wherever the network kept the prior (a 256² crop would soften the whole face).
        ``base`` and ``crop`` may be a region of the crop whose top-left is ``origin`` (x, y), e.g. the synthesis
        window; ``taper`` (optional, in [0, 1], region-sized) fades the layer out towards the window's edges."""
        diff = np.abs(crop.astype(np.int16) - base.astype(np.int16)).max(-1).astype(np.float32)
        # zero beyond the region: outside a window the network leaves the analytic pixels as they are
        alpha = cv2.GaussianBlur(np.clip(diff / tau, 0.0, 1.0), (0, 0), 2.0, borderType=cv2.BORDER_CONSTANT)
        alpha = np.clip(alpha * 1.5, 0.0, 1.0)
        if taper is not None:
            alpha *= taper
        box = mask_box(alpha, 0.02)
        if box is None:
            return analytic
        x0, y0, x1, y1 = box
        ox, oy = origin
        layer = Overlay.from_straight(crop[y0:y1, x0:x1], alpha[y0:y1, x0:x1], (x0 + ox, y0 + oy, x1 + ox, y1 + oy))
        top = layer.over(analytic.overlay) if analytic.overlay is not None else layer
        return RenderOutput(flow=analytic.flow, overlay=top, flow_weight=analytic.flow_weight,
                            background=analytic.background)


def weights_available() -> bool:
    """Whether the renderer can run here: torch installed and the shipped (or ``FACEANIM_WEIGHTS``) weights found."""
    from importlib.util import find_spec

    return find_spec("torch") is not None and (weights_dir() / DEFAULT_WEIGHTS).is_file()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), read from /proc/cpuinfo (Linux only)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def below_eyes(landmarks: np.ndarray, size: int, gap: float = 3.0, ramp: float = 8.0) -> np.ndarray:
    """(size,) row weights: 0 down to ``gap`` pixels under the lower eyelids, rising to 1 over ``ramp`` pixels.
    A mouth window tall enough for an open jaw reaches the eyes; they stay the analytic renderer's (its eye
    retargeting follows the driver and the user's eye controls; the network's eyes followed the driver less
    closely: eye-open correlation 0.77 vs 0.82 on 14 portraits driven by a training clip, for 0.04 dB of
    same-identity PSNR on 6 training clips)."""
    lids = [lower for pairs in (RIGHT_EYE_LIDS, LEFT_EYE_LIDS) for _, lower in pairs]
    line = float(np.max(np.asarray(landmarks)[lids, 1])) + gap
    rows = np.arange(size, dtype=np.float32) + 0.5
    return np.clip((rows - line) / ramp, 0.0, 1.0)


def window_taper(size: int, ramp: int = 12) -> np.ndarray:
    """(size, size) weights: 1 inside, falling linearly to 0 over ``ramp`` pixels at the window's edges (the
    network's output is least reliable next to its zero-padded borders, and a hard edge would show)."""
    r = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / ramp
    r = np.clip(r, 0.0, 1.0).astype(np.float32)
    return np.minimum(r[:, None], r[None, :])


_VARIANTS = {  # name -> constructor overrides; all need torch and the weights, and render 256² crops
    "mobileportrait": {},
    "mobileportrait-full": {"window": None},
    "mobileportrait-onnx": {"backend": "onnx"},
    "mobileportrait-crop": {"output": "crop"},
    "mobileportrait-fp32": {"bf16": False},
}
for _name, _overrides in _VARIANTS.items():
    register_renderer(_name, weights_available, (256,))(
        lambda _o=_overrides, **kw: MobilePortraitRenderer(**{**_o, **kw}))
