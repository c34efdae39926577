"""Paste a rendered crop back into the full-resolution source image, pixel-exactly and without a seam."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanim.face.analyze import SourceFace
from faceanim.face.crop import CropTransform
from faceanim.render.base import RenderOutput


@dataclass(frozen=True)
class PasteConfig:
    feather: float = 0.12  # width of the soft edge, as a fraction of the crop side
    colour_match: bool = True  # for image renderers: match the crop's colours to the source at the edge


def feather_mask(size: int, feather: float) -> np.ndarray:
    """Crop-sized mask: 1 inside, smooth ramp to 0 over ``feather·size`` pixels at the border."""
    ramp = max(1.0, feather * size)
    d = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    r = np.clip((d - 1.0) / ramp, 0.0, 1.0)
    r = r * r * (3 - 2 * r)
    return np.outer(r, r)


def _crop_coords(crop: CropTransform, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For every image pixel of ``box``, its position in crop pixels (float32 maps for cv2.remap)."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    m = crop.matrix
    qx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    qy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    return qx.astype(np.float32), qy.astype(np.float32)


@dataclass(frozen=True)
class PastePlan:
    """Everything paste-back needs that depends only on the source: computed once, reused every frame."""

    box: tuple[int, int, int, int]
    qx: np.ndarray  # crop x of every image pixel in ``box``
    qy: np.ndarray
    alpha: np.ndarray  # blend weight of every image pixel in ``box``
    edge_ring: np.ndarray  # crop pixels used for colour matching
    config: PasteConfig


def plan_paste(source: SourceFace, config: PasteConfig = PasteConfig()) -> PastePlan:
    crop = source.crop
    box = crop.image_box(source.image.shape)
    qx, qy = _crop_coords(crop, box)
    mask = feather_mask(crop.size, config.feather)
    alpha = cv2.remap(mask, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return PastePlan(box, qx, qy, alpha[..., None], (mask > 0.05) & (mask < 0.6), config)


def paste_back(
    source: SourceFace, output: RenderOutput, plan: PastePlan | None = None, base: np.ndarray | None = None
) -> np.ndarray:
    """Full-resolution frame: pixels outside the crop's feathered footprint are exactly the source's.

    Flow outputs resample the full-resolution source (no upscaled-crop blur); image outputs are warped
    back and, optionally, colour-matched to the source along the blend. ``base`` (default: the source
    image) is what the result is blended onto, so several faces of one photo can be pasted in turn.
    """
    plan = plan or plan_paste(source)
    image = source.image
    base = image if base is None else base
    x0, y0, x1, y1 = plan.box
    if x1 <= x0 or y1 <= y0:
        return base.copy()
    qx, qy = plan.qx, plan.qy
    region = base[y0:y1, x0:x1]
    if output.flow is not None:
        fx = cv2.remap(output.flow[..., 0], qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy = cv2.remap(output.flow[..., 1], qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inv = source.crop.inverse.astype(np.float32)
        sx = inv[0, 0] * fx + inv[0, 1] * fy + inv[0, 2]
        sy = inv[1, 0] * fx + inv[1, 1] * fy + inv[1, 2]
        warped = cv2.remap(image, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        if output.overlay is not None:
            ov = cv2.remap(output.overlay, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            a = ov[..., 3:4]
            warped = warped * (1 - a) + ov[..., :3] * 255.0 * a
    else:
        assert output.crop is not None
        rgb = output.crop.astype(np.float32)
        if plan.config.colour_match:
            ring = plan.edge_ring
            rgb += (source.crop_image[ring].astype(np.float32).mean(0) - rgb[ring].mean(0))[None, None]
        warped = cv2.remap(rgb, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    blended = region.astype(np.float32) * (1 - plan.alpha) + warped * plan.alpha
    out = base.copy()
    out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out
