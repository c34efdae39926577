"""The synthesis U-Net (plain: no attention, no dynamic convolution, no multi-scale feature warping) with
pseudo multi-view fusion at its last down-block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from faceanim.models.mobileportrait.layers import Decoder, Encoder, unet_precision, zero_conv


def view_affines(count: int) -> torch.Tensor:
    """A fixed set of ``count`` small similarity transforms (turn-like shifts, tilts, zooms): (count, 2, 3)."""
    out = []
    for i in range(count):
        ang = math.radians(8.0) * (1 if i % 2 == 0 else -1) * (1 + i // 4)
        shift = 0.06 * (1 if (i // 2) % 2 == 0 else -1)
        zoom = 1.0 + 0.04 * ((i // 2) % 2)
        c, s = math.cos(ang) / zoom, math.sin(ang) / zoom
        out.append([[c, -s, shift], [s, c, 0.0]])
    return torch.tensor(out, dtype=torch.float32).reshape(count, 2, 3)


class Synthesis(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, ...], head: int, views: int) -> None:
        super().__init__()
        self.views = views
        self.bf16 = False  # inference only: the U-Net's convolutions in bf16 (see layers.unet_precision)
        self.encoder = Encoder(cin, widths)
        self.decoder = Decoder(cin, widths, head)
        self.fuse = zero_conv(widths[-1] * (views + 1), widths[-1]) if views else None
        self.out = zero_conv(head, 3)
        self.register_buffer("affines", view_affines(views), persistent=False) if views else None

    def make_views(self, x: torch.Tensor) -> torch.Tensor:
        """The input warped by the fixed view transforms: (B*T, C, H, W)."""
        b, c, h, w = x.shape
        theta = self.affines.to(x.dtype).unsqueeze(0).expand(b, -1, -1, -1).reshape(-1, 2, 3)
        grid = F.affine_grid(theta, [b * self.views, c, h, w], align_corners=False)
        xs = x.unsqueeze(1).expand(b, self.views, c, h, w).reshape(b * self.views, c, h, w)
        return F.grid_sample(xs, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def encode_views(self, view_input: torch.Tensor) -> torch.Tensor:
        """Last down-block features of every view, stacked on channels: (B, T*C, h, w) (once per source)."""
        b = view_input.shape[0]
        f = self.encoder(self.make_views(view_input))[-1]
        return f.reshape(b, -1, *f.shape[-2:])

    def forward(self, x: torch.Tensor, view_feats: torch.Tensor | None) -> torch.Tensor:
        """The residual over the base image (3 channels)."""
        with unet_precision(self.bf16):
            feats = self.encoder(x)
            if self.fuse is not None and view_feats is not None:
                feats[-1] = feats[-1] + self.fuse(torch.cat([feats[-1], view_feats], 1))
            y = self.decoder(x, feats)
        return self.out(y.float())
