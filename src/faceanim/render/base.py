"""What every renderer takes and returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from faceanim.face.analyze import SourceFace
from faceanim.motion.transfer import TargetFace


@dataclass(frozen=True)
class Overlay:
    """Synthesised pixels on top of the warped source, in crop pixels: ``rgb`` uint8 (size, size, 3), ``alpha``
    float32 (size, size) in [0, 1], zero outside ``box`` = (x0, y0, x1, y1)."""

    rgb: np.ndarray
    alpha: np.ndarray
    box: tuple[int, int, int, int]

    def over(self, below: Overlay | None) -> Overlay:
        """This overlay composited over ``below``."""
        if below is None:
            return self
        x0, y0, x1, y1 = self.box  # outside it this overlay is transparent: only blend inside
        rgb, alpha = below.rgb.copy(), below.alpha.copy()
        a_t = self.alpha[y0:y1, x0:x1]
        rgb[y0:y1, x0:x1] = cv2.blendLinear(self.rgb[y0:y1, x0:x1], below.rgb[y0:y1, x0:x1], a_t, 1.0 - a_t)
        alpha[y0:y1, x0:x1] = a_t + below.alpha[y0:y1, x0:x1] * (1.0 - a_t)
        box = (min(x0, below.box[0]), min(y0, below.box[1]), max(x1, below.box[2]), max(y1, below.box[3]))
        return Overlay(rgb, alpha, box)


def mask_box(alpha: np.ndarray, threshold: float = 1e-3) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of ``alpha > threshold``, or None."""
    rows = np.flatnonzero((alpha > threshold).any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero((alpha[rows[0] : rows[-1] + 1] > threshold).any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True)
class RenderOutput:
    """One rendered frame in source-crop pixels.

    Flow renderers set ``flow`` (for each output crop pixel, the source-crop pixel to sample) and optionally
    ``overlay`` (synthesised content such as a mouth interior or uncovered background), so
    paste-back can resample the full-resolution source instead of upscaling a small crop. Image renderers
    (neural synthesis) set ``crop`` instead.
    """

    flow: np.ndarray | None = None
    overlay: Overlay | None = None
    crop: np.ndarray | None = None


def identity_flow(size: int) -> np.ndarray:
    """(size, size, 2) float32 flow that samples every pixel from itself."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.dstack([xs, ys])


def composite_overlay(image: np.ndarray, overlay: Overlay | None) -> np.ndarray:
    """Alpha-blend an overlay onto a uint8 RGB image of the same size."""
    if overlay is None:
        return image
    return cv2.blendLinear(overlay.rgb, image, overlay.alpha, 1.0 - overlay.alpha)


def render_crop(source: SourceFace, output: RenderOutput) -> np.ndarray:
    """The output as an aligned crop (uint8 RGB)."""
    if output.crop is not None:
        return output.crop
    assert output.flow is not None
    warped = cv2.remap(
        source.crop_image, output.flow[..., 0], output.flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
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
