"""Paste a rendered crop back into the full-resolution source image, pixel-exactly and without a seam."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanim.face.analyze import SourceFace
from faceanim.face.crop import CropTransform
from faceanim.render.base import Overlay, RenderOutput, identity_flow


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
    crop_map: np.ndarray  # (h, w, 2) float32: crop position of every image pixel in ``box``
    image_grid: np.ndarray  # (h, w, 2) float32: the image pixel positions of ``box`` themselves
    crop_grid: np.ndarray  # (size, size, 2) float32 identity flow of the crop
    alpha: np.ndarray  # (h, w) float32 blend weight of the rendered frame
    alpha_inv: np.ndarray  # 1 - alpha
    edge_ring: np.ndarray  # crop pixels used for colour matching
    edge_colour: np.ndarray  # the source crop's mean colour there
    displacement_to_image: np.ndarray  # 2×3 (for cv2.transform): crop-pixel displacements → image pixels
    config: PasteConfig


def plan_paste(source: SourceFace, config: PasteConfig = PasteConfig()) -> PastePlan:
    crop = source.crop
    box = crop.image_box(source.image.shape)
    qx, qy = _crop_coords(crop, box)
    mask = feather_mask(crop.size, config.feather)
    alpha = cv2.remap(mask, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ring = (mask > 0.05) & (mask < 0.6)
    return PastePlan(
        box, np.dstack([qx, qy]), np.dstack([xs, ys]), identity_flow(crop.size), alpha, 1.0 - alpha,
        ring, source.crop_image[ring].astype(np.float32).mean(0),
        np.hstack([crop.inverse[:, :2], np.zeros((2, 1))]), config,
    )


def _composite_overlay(warped: np.ndarray, overlay: Overlay, plan: PastePlan, crop: CropTransform) -> None:
    """Blend the overlay into ``warped`` (image pixels of the plan's box), touching only its footprint."""
    bx0, by0, bx1, by1 = overlay.box
    corners = np.array([[bx0, by0], [bx1, by0], [bx0, by1], [bx1, by1]], float)
    img_pts = crop.to_image(corners)
    x0, y0 = plan.box[:2]
    h, w = warped.shape[:2]
    ax0 = int(np.clip(np.floor(img_pts[:, 0].min()) - 2 - x0, 0, w))
    ay0 = int(np.clip(np.floor(img_pts[:, 1].min()) - 2 - y0, 0, h))
    ax1 = int(np.clip(np.ceil(img_pts[:, 0].max()) + 3 - x0, 0, w))
    ay1 = int(np.clip(np.ceil(img_pts[:, 1].max()) + 3 - y0, 0, h))
    if ax1 <= ax0 or ay1 <= ay0:
        return
    sub = plan.crop_map[ay0:ay1, ax0:ax1]
    rgb = cv2.remap(overlay.rgb, sub, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.remap(overlay.alpha, sub, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped[ay0:ay1, ax0:ax1] = cv2.blendLinear(rgb, warped[ay0:ay1, ax0:ax1], a, 1.0 - a)


def paste_back(
    source: SourceFace, output: RenderOutput, plan: PastePlan | None = None, base: np.ndarray | None = None
) -> np.ndarray:
    """Full-resolution frame: pixels outside the crop's feathered footprint are exactly the source's.

    Flow outputs resample the full-resolution source (no upscaled-crop blur); image outputs are warped
    back and, optionally, colour-matched to the source along the blend. ``base`` (default: the source
    image) is what the result is blended onto, so several faces of one photo can be pasted in turn.
    """
    plan = plan or plan_paste(source)
    base = source.image if base is None else base
    x0, y0, x1, y1 = plan.box
    if x1 <= x0 or y1 <= y0:
        return base.copy()
    if output.flow is not None:
        # The flow's displacement, turned into image pixels at crop size and spread over the box. Interpolating
        # the displacement (not absolute coordinates) keeps a still region pixel-exact.
        disp = cv2.transform(output.flow - plan.crop_grid, plan.displacement_to_image)
        image_map = plan.image_grid + cv2.remap(
            disp, plan.crop_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        # sample ``base`` (not the source) so faces pasted earlier in a group photo are carried along
        warped = cv2.remap(base, image_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if output.overlay is not None:
            _composite_overlay(warped, output.overlay, plan, source.crop)
    else:
        assert output.crop is not None
        rgb = output.crop.astype(np.float32)
        if plan.config.colour_match:
            rgb += (plan.edge_colour - rgb[plan.edge_ring].mean(0))[None, None]
        rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
        warped = cv2.remap(rgb, plan.crop_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = base.copy()
    out[y0:y1, x0:x1] = cv2.blendLinear(warped, base[y0:y1, x0:x1], plan.alpha, plan.alpha_inv)
    return out
