"""MobilePortrait networks (keypoints, TPS, dense motion, synthesis) and their tiers/ablations."""

from faceanim.models.mobileportrait.config import ABLATIONS, FK_INDICES, TIERS, MobilePortraitConfig
from faceanim.models.mobileportrait.model import FrameNetwork, MobilePortrait

__all__ = ["ABLATIONS", "FK_INDICES", "TIERS", "FrameNetwork", "MobilePortrait", "MobilePortraitConfig"]
