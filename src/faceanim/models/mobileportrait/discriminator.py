"""A small multi-layer patch discriminator (pix2pixHD-style) whose features also serve feature matching."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """Real/fake logits per patch and the intermediate features (for the feature-matching loss)."""

    def __init__(self, cin: int = 3, widths: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        chans = (cin, *widths)
        self.layers = nn.ModuleList(
            nn.utils.spectral_norm(nn.Conv2d(chans[i], chans[i + 1], 4, 2 if i < len(widths) - 1 else 1, 1))
            for i in range(len(widths))
        )
        self.head = nn.Conv2d(widths[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        x = x * 2.0 - 1.0
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            feats.append(x)
        return self.head(x), feats
