"""Neural networks (no file I/O here): a timm-style registry, ``create_model(name, **overrides)``."""

from __future__ import annotations

from dataclasses import replace

from torch import nn


def list_models() -> list[str]:
    """Registered model names (tiers and ablation variants)."""
    from faceanim.models.mobileportrait.config import TIERS

    return sorted(TIERS)


def create_model(name: str, **overrides: object) -> nn.Module:
    """A freshly initialised network by registry name, with optional config overrides."""
    from faceanim.models.mobileportrait.config import TIERS
    from faceanim.models.mobileportrait.model import MobilePortrait

    if name not in TIERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(TIERS))}")
    return MobilePortrait(replace(TIERS[name], **overrides))
