"""The app's controls as one frozen value, and how they map onto the pipeline's configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faceanim.face.crop import CropConfig
from faceanim.motion.transfer import TransferConfig
from faceanim.pipeline.animator import AnimatorConfig
from faceanim.pipeline.run import JobOptions
from faceanim.pipeline.session import SessionConfig
from faceanim.render.registry import default_renderer


@dataclass(frozen=True)
class Controls:
    """Everything a user can set in the app (``None`` = follow the driver)."""

    mode: Literal["relative", "absolute"] = "relative"
    pose: bool = True
    expression_scale: float = 1.0
    left_eye_open: float | None = None
    right_eye_open: float | None = None
    lip_open: float | None = None
    gaze: tuple[float, float] | None = None
    head_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees
    smoothing: float = 1.0
    face: int | Literal["all"] = 0
    renderer: str | None = None  # None: the default for the crop size (render.registry.default_renderer)
    crop_only: bool = False
    crop_size: int = 256

    def __post_init__(self) -> None:
        if self.renderer is None:
            object.__setattr__(self, "renderer", default_renderer(self.crop_size))

    def transfer(self) -> TransferConfig:
        return TransferConfig(
            mode=self.mode,
            pose=self.pose,
            expression_scale=self.expression_scale,
            left_eye_open=self.left_eye_open,
            right_eye_open=self.right_eye_open,
            lip_open=self.lip_open,
            gaze_direction=self.gaze,
            head_offset=(float(self.head_offset[0]), float(self.head_offset[1]), float(self.head_offset[2])),
        )

    def animator_config(self) -> AnimatorConfig:
        return AnimatorConfig(renderer=self.renderer, crop=CropConfig(size=self.crop_size), transfer=self.transfer(),
                              crop_only=self.crop_only)

    def job_options(self, max_frames: int | None = None, provenance: bool = True) -> JobOptions:
        return JobOptions(animator=self.animator_config(), session=SessionConfig(smoothing=self.smoothing),
                          face_index=self.face, max_frames=max_frames, provenance=provenance, progress=False)

    def prepare_key(self) -> tuple:
        """What the prepared source depends on (changing anything else needs no new preparation)."""
        return (self.face, self.renderer, self.crop_size)
