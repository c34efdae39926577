"""Plain building blocks: 3×3 conv blocks, a plain U-Net encoder/decoder, small exportable linear algebra."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """conv3×3 → GroupNorm-free LeakyReLU, twice (no normalisation: batch-size independent, fast on CPU)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        return F.leaky_relu(self.conv2(x), 0.2)


class Encoder(nn.Module):
    """Strided ConvBlocks; returns the features of every level (finest first)."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        chans = (cin, *widths)
        self.blocks = nn.ModuleList(ConvBlock(chans[i], chans[i + 1], stride=2) for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Upsample ×2 + skip concat + ConvBlock per level, up to the input resolution (skip = the input itself)."""

    def __init__(self, cin: int, widths: tuple[int, ...], head: int) -> None:
        super().__init__()
        ups = []
        for i in range(len(widths) - 1, 0, -1):
            ups.append(ConvBlock(widths[i] + widths[i - 1], widths[i - 1]))
        self.ups = nn.ModuleList(ups)
        self.head = ConvBlock(widths[0] + cin, head)

    def forward(self, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        y = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            y = up(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([y, x], 1))


def zero_conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    """A conv initialised to output zero: a new branch starts as a no-op."""
    conv = nn.Conv2d(cin, cout, k, 1, k // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``a @ x = b`` for small square systems (..., n, n) by Gauss–Jordan with partial pivoting.

    Written with argmax/gather/where only, so it exports to ONNX (``torch.linalg.solve`` does not).
    """
    n = a.shape[-1]
    m = torch.cat([a, b], -1)
    rows = torch.arange(n, device=a.device)
    for i in range(n):
        col = m[..., :, i].abs() * (rows >= i).to(m.dtype)  # only rows not yet used as pivots
        p = col.argmax(-1, keepdim=True)  # (..., 1)
        perm = torch.where(rows == i, p, torch.where(rows == p, torch.full_like(p, i), rows.expand_as(col)))
        m = torch.gather(m, -2, perm.unsqueeze(-1).expand_as(m))
        pivot_row = m[..., i : i + 1, :] / m[..., i : i + 1, i : i + 1]
        factor = m[..., :, i : i + 1] * (rows != i).to(m.dtype).unsqueeze(-1)
        m = m - factor * pivot_row
        m = torch.where((rows == i).unsqueeze(-1), pivot_row.expand_as(m), m)
    return m[..., n:]


def unet_precision(enabled: bool):
    """bf16 autocast for a U-Net's convolutions only (CPU). Keypoints, the TPS solve, flows and sampling grids
    stay fp32: autocasting the whole frame network wrecked its output (PSNR 16.6 dB), the convolutions alone
    do not."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
