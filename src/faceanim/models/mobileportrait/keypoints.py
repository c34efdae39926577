"""Keypoints: a light CNN for the 50 neural keypoints (NK) and the MLP that mixes them with the facial ones (FK)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceanim.models.mobileportrait.layers import Encoder


class KeypointCNN(nn.Module):
    """50 neural keypoints in [-1, 1] from a 64² image."""

    def __init__(self, num_kp: int, width: int) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.encoder = Encoder(3, (width, 2 * width, 4 * width, 4 * width))  # 64 → 4
        self.fc = nn.Linear(4 * width * 16, num_kp * 2)
        nn.init.normal_(self.fc.weight, std=1e-3)
        # start spread over the face instead of all at the centre
        g = torch.linspace(-0.6, 0.6, 10)
        start = torch.stack(torch.meshgrid(g, torch.linspace(-0.5, 0.7, 5), indexing="xy"), -1).reshape(-1, 2)
        with torch.no_grad():
            self.fc.bias.copy_(torch.atanh(start[:num_kp].clamp(-0.99, 0.99)).reshape(-1))

    def forward(self, image64: torch.Tensor) -> torch.Tensor:
        f = self.encoder(image64)[-1]
        return torch.tanh(self.fc(f.flatten(1))).view(-1, self.num_kp, 2)


class MixedKeypointMLP(nn.Module):
    """Mixed keypoints from the concatenated facial (106) and neural (50) keypoints; a training-only head
    reconstructs the facial keypoints from the hidden features (the FK-accuracy loss)."""

    def __init__(self, num_fk: int, num_kp: int, width: int, mode: str) -> None:
        super().__init__()
        self.mode, self.num_kp, self.num_fk = mode, num_kp, num_fk
        cin = num_fk * 2 + (num_kp * 2 if mode == "mixed" else 0)
        self.body = nn.Sequential(nn.Linear(cin, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2))
        self.out = nn.Linear(width, num_kp * 2)
        self.fk_head = nn.Linear(width, num_fk * 2)

    def forward(self, fk: torch.Tensor, nk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mixed keypoints (B, K, 2), reconstructed FK (B, 106, 2))."""
        x = fk.flatten(1) if self.mode == "fk" else torch.cat([fk.flatten(1), nk.flatten(1)], 1)
        h = self.body(x)
        delta = self.out(h).view(-1, self.num_kp, 2)
        if self.mode == "mixed":  # a correction of the neural keypoints by the facial ones
            delta = delta + atanh(nk)
        mixed = torch.tanh(delta)
        return mixed, self.fk_head(h).view(-1, self.num_fk, 2)


def atanh(x: torch.Tensor) -> torch.Tensor:
    """Inverse tanh (written out: the ONNX exporter has no ``aten::atanh``)."""
    x = x.clamp(-0.999, 0.999)
    return 0.5 * torch.log((1.0 + x) / (1.0 - x))


def downsample(image: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(image, size=(size, size), mode="area")
