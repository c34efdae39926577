"""Motion: thin-plate-spline transforms from mixed keypoints (TPSMM) and the dense-motion U-Net.

All coordinates are normalised to [-1, 1] (``align_corners=True``: pixel 0 is -1, pixel size-1 is +1).
Flows are backward: for each output pixel, where to sample the source.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceanim.models.mobileportrait.layers import Decoder, Encoder, solve, unet_precision, zero_conv


def make_grid(size: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(size, size, 2) identity sampling grid (x, y) in [-1, 1]."""
    t = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xs, ys], -1)


def _tps_kernel(d2: torch.Tensor) -> torch.Tensor:
    return d2 * torch.log(d2 + 1e-9)  # U(r) = r² log r²


def tps_flows(kp_d: torch.Tensor, kp_s: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """One TPS per group of 5 keypoints, mapping driving → source: (B, K/5, H, W, 2).

    ``kp_d``/``kp_s``: (B, K, 2); ``grid``: (H, W, 2).
    """
    b, k, _ = kp_d.shape
    g = k // 5
    p = kp_d.view(b, g, 5, 2)
    q = kp_s.view(b, g, 5, 2)
    d2 = ((p[:, :, :, None] - p[:, :, None]) ** 2).sum(-1)  # (B, G, 5, 5)
    kmat = _tps_kernel(d2) + 1e-3 * torch.eye(5, dtype=p.dtype, device=p.device)
    ones = torch.ones_like(p[..., :1])
    pmat = torch.cat([ones, p], -1)  # (B, G, 5, 3)
    top = torch.cat([kmat, pmat], -1)
    bottom = torch.cat([pmat.transpose(-1, -2), torch.zeros_like(kmat[..., :3, :3])], -1)
    lmat = torch.cat([top, bottom], -2)  # (B, G, 8, 8)
    rhs = torch.cat([q, torch.zeros_like(q[..., :3, :])], -2)  # (B, G, 8, 2)
    params = solve(lmat, rhs)
    w, a = params[..., :5, :], params[..., 5:, :]
    h, wd = grid.shape[:2]
    pts = grid.reshape(1, 1, -1, 2)
    u = _tps_kernel(((pts[:, :, :, None] - p[:, :, None]) ** 2).sum(-1))  # (B, G, HW, 5)
    affine = a[..., :1, :] + pts[..., :1] * a[..., 1:2, :] + pts[..., 1:2] * a[..., 2:3, :]
    return (affine + u @ w).view(b, g, h, wd, 2)


def keypoint_heatmaps(kp: torch.Tensor, grid: torch.Tensor, variance: float = 0.01) -> torch.Tensor:
    """Gaussian heatmaps summed per group of 5 keypoints: (B, K/5, H, W)."""
    b, k, _ = kp.shape
    d2 = ((grid[None, None] - kp[:, :, None, None]) ** 2).sum(-1)  # (B, K, H, W)
    heat = torch.exp(-0.5 * d2 / variance)
    return heat.view(b, k // 5, 5, *grid.shape[:2]).sum(2)


class DenseMotion(nn.Module):
    """Per-pixel weights over the candidate flows (background, TPS transforms, the analytic prior), an
    occlusion map and a residual flow; two training-only heads predict the driving frame's foreground and
    landmark masks."""

    def __init__(self, num_tps: int, widths: tuple[int, ...], prior: bool, residual: bool) -> None:
        super().__init__()
        self.prior, self.residual = prior, residual
        self.bf16 = False  # inference only: the U-Net's convolutions in bf16 (see layers.unet_precision)
        self.num_candidates = 1 + num_tps + int(prior)
        cin = self.num_candidates * 4 + 2 + 2  # (deformed source + heatmap) per candidate, masks, prior flow
        self.encoder = Encoder(cin, widths)
        self.decoder = Decoder(cin, widths, widths[0])
        self.weights = zero_conv(widths[0], self.num_candidates)
        if prior:  # start from the analytic flow
            with torch.no_grad():
                self.weights.bias[-1] = 6.0
        self.occlusion = nn.Conv2d(widths[0], 1, 3, 1, 1)
        nn.init.zeros_(self.occlusion.weight)
        nn.init.constant_(self.occlusion.bias, 3.0)
        self.flow_residual = zero_conv(widths[0], 2)
        self.mask_heads = nn.Conv2d(widths[0], 2, 3, 1, 1)  # driving foreground, driving landmark mask

    def forward(
        self, src64: torch.Tensor, fg64: torch.Tensor, lmk64: torch.Tensor, kp_s: torch.Tensor, kp_d: torch.Tensor,
        prior_flow: torch.Tensor | None, grid: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        b, _, h, w = src64.shape
        flows = [grid.expand(b, 1, h, w, 2), tps_flows(kp_d, kp_s, grid)]
        heat = keypoint_heatmaps(kp_d, grid) - keypoint_heatmaps(kp_s, grid)
        heats = [torch.zeros_like(heat[:, :1]), heat]
        if self.prior:
            assert prior_flow is not None
            flows.append(prior_flow.unsqueeze(1))
            heats.append(torch.zeros_like(heat[:, :1]))
        flows_t = torch.cat(flows, 1)  # (B, C, H, W, 2)
        n = flows_t.shape[1]
        deformed = F.grid_sample(
            src64.unsqueeze(1).expand(b, n, 3, h, w).reshape(b * n, 3, h, w), flows_t.reshape(b * n, h, w, 2),
            mode="bilinear", padding_mode="border", align_corners=True,
        ).view(b, n * 3, h, w)
        prior_disp = (prior_flow - grid).permute(0, 3, 1, 2) if self.prior else torch.zeros_like(src64[:, :2])
        x = torch.cat([deformed, torch.cat(heats, 1), fg64, lmk64, prior_disp], 1)
        with unet_precision(self.bf16):
            y = self.decoder(x, self.encoder(x))
        y = y.float()
        weights = torch.softmax(self.weights(y), 1)  # (B, C, H, W)
        flow = (weights.unsqueeze(-1) * flows_t).sum(1)
        if self.residual:
            flow = flow + 0.1 * self.flow_residual(y).permute(0, 2, 3, 1)
        masks = torch.sigmoid(self.mask_heads(y))
        return {"flow": flow, "occlusion": torch.sigmoid(self.occlusion(y)), "weights": weights,
                "fg_pred": masks[:, :1], "lmk_pred": masks[:, 1:]}
