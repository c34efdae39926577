"""What every renderer takes and returns, and how its layers are composited (premultiplied alpha)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from faceanim.face.analyze import SourceFace
from faceanim.motion.transfer import TargetFace

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in crop pixels, end-exclusive


@dataclass(frozen=True)
class Overlay:
    """Synthesised RGBA pixels over part of a crop, premultiplied: ``rgba`` is float32 (y1 - y0, x1 - x0, 4)
    covering only ``box``, channels 0–2 colour·alpha on the 0–255 scale, channel 3 alpha in [0, 1];
    transparent outside ``box``. Premultiplied layers compose exactly and resample without fringes."""

    rgba: np.ndarray
    box: Box

    @classmethod
    def from_straight(cls, rgb: np.ndarray, alpha: np.ndarray, box: Box) -> Overlay:
        """An overlay from straight (not premultiplied) 0–255 colours and alpha, both already cut to ``box``."""
        a = alpha.astype(np.float32)
        return cls(np.dstack([rgb.astype(np.float32) * a[..., None], a]), box)

    @property
    def alpha(self) -> np.ndarray:
        return self.rgba[..., 3]

    def over(self, below: Overlay | None) -> Overlay:
        """This overlay composited over ``below`` (Porter–Duff "over" on premultiplied colour)."""
        if below is None:
            return self
        box = (min(self.box[0], below.box[0]), min(self.box[1], below.box[1]),
               max(self.box[2], below.box[2]), max(self.box[3], below.box[3]))
        out = np.zeros((box[3] - box[1], box[2] - box[0], 4), np.float32)
        for layer in (below, self):  # bottom to top
            x0, y0, x1, y1 = layer.box
            region = out[y0 - box[1] : y1 - box[1], x0 - box[0] : x1 - box[0]]
            region *= 1.0 - layer.rgba[..., 3:]
            region += layer.rgba
        return Overlay(out, box)


def mask_box(alpha: np.ndarray, threshold: float = 1e-3) -> Box | None:
    """Bounding box (x0, y0, x1, y1) of ``alpha > threshold``, or None."""
    rows = np.flatnonzero((alpha > threshold).any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero((alpha[rows[0] : rows[-1] + 1] > threshold).any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True)
class RenderOutput:
    """One rendered frame in source-crop pixels.

    Flow renderers describe layers, bottom to top: the source in place; ``background`` (synthesised pixels
    such as background the person uncovered); the source resampled through ``flow`` (for each output pixel,
    the source-crop pixel to sample) with per-pixel weight ``flow_weight`` (None: 1 everywhere, the layer
    covers all); ``overlay`` (e.g. a mouth interior). The layers are blended by colour, never by mixing
    coordinates, so paste-back can resample the full-resolution source and keep still regions exact.
    Image renderers (neural synthesis) set ``crop`` instead.
    """

    flow: np.ndarray | None = None
    overlay: Overlay | None = None
    crop: np.ndarray | None = None
    flow_weight: np.ndarray | None = None  # (size, size) float32 in [0, 1]
    background: Overlay | None = None


def identity_flow(size: int) -> np.ndarray:
    """(size, size, 2) float32 flow that samples every pixel from itself."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.dstack([xs, ys])


def composite_overlay(image: np.ndarray, overlay: Overlay | None) -> np.ndarray:
    """``overlay`` over a crop-sized uint8 RGB image (a new image; only the overlay's box changes)."""
    if overlay is None:
        return image
    out = image.copy()
    x0, y0, x1, y1 = overlay.box
    region = out[y0:y1, x0:x1]
    rgba = overlay.rgba
    region[:] = np.clip(rgba[..., :3] + region * (1.0 - rgba[..., 3:]) + 0.5, 0, 255).astype(np.uint8)
    return out


def render_crop(source: SourceFace, output: RenderOutput) -> np.ndarray:
    """The output as an aligned crop (uint8 RGB)."""
    if output.crop is not None:
        return output.crop
    assert output.flow is not None
    warped = cv2.remap(
        source.crop_image, output.flow[..., 0], output.flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if output.flow_weight is not None:
        still = composite_overlay(source.crop_image, output.background)
        warped = cv2.blendLinear(warped, still, output.flow_weight, 1.0 - output.flow_weight)
    return composite_overlay(warped, output.overlay)


class Renderer(ABC):
    """Prepare once per source face, then render any number of target frames."""

    name: ClassVar[str]

    @abstractmethod
    def prepare(self, source: SourceFace) -> Any:
        """Precompute everything that depends only on the source."""

    @abstractmethod
    def render(self, prepared: Any, target: TargetFace) -> RenderOutput:
        """Render one frame."""

    def prepare_frame(self, previous: Any, source: SourceFace) -> Any:
        """Prepare the next frame of a source *video* (video-to-video), given the previous frame's preparation.

        The default prepares afresh; a renderer may reuse what barely changes from frame to frame (mesh
        topology, colours, background) to keep the per-frame cost low.
        """
        return self.prepare(source)
