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
class RenderOutput:
    """One rendered frame in source-crop pixels.

    Flow renderers set ``flow`` (for each output crop pixel, the source-crop pixel to sample) and optionally
    ``overlay`` (straight-alpha RGBA float32 in [0, 1] for synthesised content such as a mouth interior), so
    paste-back can resample the full-resolution source instead of upscaling a small crop. Image renderers
    (neural synthesis) set ``crop`` instead.
    """

    flow: np.ndarray | None = None
    overlay: np.ndarray | None = None
    crop: np.ndarray | None = None


def identity_flow(size: int) -> np.ndarray:
    """(size, size, 2) float32 flow that samples every pixel from itself."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.dstack([xs, ys])


def composite_overlay(image: np.ndarray, overlay: np.ndarray | None) -> np.ndarray:
    """Alpha-blend an RGBA float overlay onto a uint8 RGB image."""
    if overlay is None:
        return image
    alpha = overlay[..., 3:4]
    out = image.astype(np.float32) * (1.0 - alpha) + overlay[..., :3] * 255.0 * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


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
