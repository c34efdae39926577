"""MobilePortrait configurations: tiers by channels and depth, ablations as switches (one config type)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import numpy as np

# 106 facial keypoints (the paper uses 106) chosen from mediapipe's 478: every other face-oval point (18; the
# silhouette moves smoothly, half the points carry it), both eye contours (32: blinks need the lids), both brows
# (20), the iris centres (2: gaze), the outer lip contour (20) and every other inner-lip point (10: opening),
# and 4 nose points (tip, bridge, wings: the rigid anchor). The cheeks and forehead carry little motion.
_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
         149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
_LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
_LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
_RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
_OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
_INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
_NOSE = (1, 4, 98, 327)
FK_INDICES = np.array(
    _OVAL[::2] + _LEFT_EYE + _RIGHT_EYE + _LEFT_BROW + _RIGHT_BROW + (468, 473) + _OUTER_LIPS + _INNER_LIPS[::2]
    + _NOSE,
    dtype=np.int64,
)
assert len(FK_INDICES) == 106 and len(set(FK_INDICES.tolist())) == 106
LIP_INDICES = np.array(_OUTER_LIPS, dtype=np.int64)


@dataclass(frozen=True)
class MobilePortraitConfig:
    """Everything that defines one network. Tiers differ in widths; ablations flip switches."""

    size: int = 256  # output crop
    motion_size: int = 64  # dense-motion resolution
    num_kp: int = 50  # mixed (and neural) keypoints; K/5 TPS transforms of 5 points each
    keypoints: Literal["mixed", "nk", "fk"] = "mixed"
    kp_width: int = 32  # keypoint CNN base width
    mlp_width: int = 256
    motion_widths: tuple[int, ...] = (24, 48, 64, 96)
    synth_widths: tuple[int, ...] = (16, 24, 48, 96)  # at size/2, /4, /8, /16
    head_width: int = 16  # full-resolution decoder width
    residual_flow: bool = True
    pseudo_background: bool = True
    views: int = 2  # pseudo multi-view features (0 = off)
    analytic_prior: bool = True  # the analytic mesh flow as a candidate flow and the analytic crop as the base

    @property
    def num_tps(self) -> int:
        return self.num_kp // 5

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MobilePortraitConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown MobilePortrait config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


_CPU = MobilePortraitConfig()
TIERS: dict[str, MobilePortraitConfig] = {
    # the CPU real-time tier (about 2 GFLOPs per frame at 256²)
    "mobileportrait_cpu": _CPU,
    # the paper's tiers, scaled by channels and depth (about 4, 7 and 16 GFLOPs at 256²)
    "mobileportrait_4g": replace(_CPU, synth_widths=(32, 48, 96, 160), head_width=24, motion_widths=(32, 64, 96, 128),
                                 views=4),
    "mobileportrait_7g": replace(_CPU, synth_widths=(48, 64, 128, 192), head_width=32, motion_widths=(32, 64, 128, 192),
                                 views=4),
    "mobileportrait_16g": replace(_CPU, synth_widths=(64, 96, 192, 256, 256), head_width=48,
                                  motion_widths=(48, 96, 160, 256), views=4),
    "mobileportrait_cpu_512": replace(_CPU, size=512, synth_widths=(12, 16, 24, 48, 96), head_width=12),
}
# MobilePortrait Tables 3-4 style ablations of the CPU tier, as registry entries
ABLATIONS: dict[str, dict] = {
    "nk_only": {"keypoints": "nk"},
    "fk_only": {"keypoints": "fk"},
    "no_residual_flow": {"residual_flow": False},
    "no_pseudo_background": {"pseudo_background": False},
    "views0": {"views": 0},
    "views4": {"views": 4},
    "views8": {"views": 8},
    "no_analytic_prior": {"analytic_prior": False},
}
for _name, _over in ABLATIONS.items():
    TIERS[f"mobileportrait_cpu_{_name}"] = replace(_CPU, **_over)
