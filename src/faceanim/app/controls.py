"""The app's controls as one frozen value, and how they map onto the pipeline's configs."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from faceanim.face.crop import CropConfig
from faceanim.face.track import TrackerConfig
from faceanim.motion.transfer import TransferConfig
from faceanim.pipeline.animator import AnimatorConfig
from faceanim.pipeline.run import JobOptions

#: The TransferConfig field the head yaw/pitch/roll sliders feed (degrees); the sliders are disabled until it exists.
HEAD_OFFSET_FIELD = "head_offset"


def head_offset_supported() -> bool:
    """True when :class:`TransferConfig` has a ``head_offset`` (yaw, pitch, roll degrees) field."""
    return HEAD_OFFSET_FIELD in {f.name for f in fields(TransferConfig)}


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
    renderer: str = "analytic"
    crop_only: bool = False
    crop_size: int = 256

    def transfer(self) -> TransferConfig:
        config = TransferConfig(
            mode=self.mode,
            pose=self.pose,
            expression_scale=self.expression_scale,
            left_eye_open=self.left_eye_open,
            right_eye_open=self.right_eye_open,
            lip_open=self.lip_open,
            gaze_direction=self.gaze,
        )
        if head_offset_supported() and any(self.head_offset):
            config = replace(config, **{HEAD_OFFSET_FIELD: tuple(float(v) for v in self.head_offset)})
        return config

    def animator_config(self) -> AnimatorConfig:
        return AnimatorConfig(renderer=self.renderer, crop=CropConfig(size=self.crop_size), transfer=self.transfer(),
                              crop_only=self.crop_only)

    def job_options(self, max_frames: int | None = None, provenance: bool = True) -> JobOptions:
        extra = {}
        if "session" in {f.name for f in fields(JobOptions)}:  # smoothing is the session's once it has one
            from faceanim.pipeline.session import SessionConfig

            extra["session"] = SessionConfig(smoothing=self.smoothing)
        return JobOptions(animator=self.animator_config(), tracker=TrackerConfig(smoothing=self.smoothing),
                          face_index=self.face, max_frames=max_frames, provenance=provenance, progress=False,
                          **extra)

    def prepare_key(self) -> tuple:
        """What the prepared source depends on (changing anything else needs no new preparation)."""
        return (self.face, self.renderer, self.crop_size)
