"""MobilePortrait's video-driven network (§3.1–3.3): mixed keypoints → TPS + dense motion → synthesis U-Net.

Per source (once): neural keypoints, masks at motion resolution and the pseudo multi-view features.
Per frame: the driving facial keypoints (the target landmarks, in the source crop) and, with the analytic
prior, the analytic renderer's crop and mesh flow; the network refines them. Images are float in [0, 1],
(B, 3, H, W); keypoints are (B, N, 2) in [-1, 1]. Networks never read files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceanim.models.mobileportrait.config import FK_INDICES, MobilePortraitConfig
from faceanim.models.mobileportrait.keypoints import KeypointCNN, MixedKeypointMLP, downsample
from faceanim.models.mobileportrait.motion import DenseMotion, make_grid
from faceanim.models.mobileportrait.synthesis import Synthesis

SOURCE_KEYS = ("src", "src_bg", "src64", "fg64", "lmk64", "kp_s", "view_feats")


def landmark_mask(fk: torch.Tensor, grid: torch.Tensor, variance: float = 0.0025) -> torch.Tensor:
    """Soft mask of the facial keypoints (a landmark image), (B, 1, H, W) in [0, 1]."""
    d2 = ((grid[None, None] - fk[:, :, None, None]) ** 2).sum(-1)
    return torch.exp(-0.5 * d2 / variance).sum(1, keepdim=True).clamp(max=1.0)


def crop_window(t: torch.Tensor, y0: int | torch.Tensor, x0: int | torch.Tensor, size: int) -> torch.Tensor:
    """``t[..., y0:y0+size, x0:x0+size]``; the origin may be a tensor (kept as an input by the ONNX export)."""
    if isinstance(y0, int) and isinstance(x0, int):
        return t[..., y0 : y0 + size, x0 : x0 + size]
    offsets = torch.arange(size, device=t.device)
    return t.index_select(-2, offsets + y0).index_select(-1, offsets + x0)


class MobilePortrait(nn.Module):
    def __init__(self, config: MobilePortraitConfig = MobilePortraitConfig()) -> None:
        super().__init__()
        self.config = cfg = config
        self.num_fk = len(FK_INDICES)
        self.kp_net = KeypointCNN(cfg.num_kp, cfg.kp_width)
        self.mixer = MixedKeypointMLP(self.num_fk, cfg.num_kp, cfg.mlp_width, cfg.keypoints)
        self.dense_motion = DenseMotion(cfg.num_tps, cfg.motion_widths, cfg.analytic_prior, cfg.residual_flow)
        self.synth_in = 7 + (3 if cfg.pseudo_background else 0)
        self.synthesis = Synthesis(self.synth_in, cfg.synth_widths, cfg.head_width, cfg.views)
        self.register_buffer("grid64", make_grid(cfg.motion_size), persistent=False)

    # ------------------------------------------------------------------------------------------ keypoints
    def keypoints(self, fk: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(keypoints used for motion, neural keypoints, reconstructed facial keypoints) of one image."""
        nk = self.kp_net(downsample(image, 64))
        if self.config.keypoints == "nk":
            return nk, nk, fk
        mixed, fk_rec = self.mixer(fk, nk)
        return mixed, nk, fk_rec

    def _synth_input(self, x0: torch.Tensor, warped_occ: torch.Tensor, occ: torch.Tensor, bg: torch.Tensor):
        parts = [x0, warped_occ, occ]
        if self.config.pseudo_background:
            parts.append(bg)
        return torch.cat(parts, 1)

    def view_input(self, src: torch.Tensor, src_bg: torch.Tensor) -> torch.Tensor:
        """What a pseudo view is made from: the source laid out like a frame's synthesis input."""
        return self._synth_input(src, src, torch.ones_like(src[:, :1]), src_bg)

    @torch.no_grad()
    def window_views(self, view_input: torch.Tensor, y0: int, x0: int, size: int) -> torch.Tensor:
        """The pseudo multi-view features of one window of the crop, encoded from that window of the views
        (as in training, where synthesis runs on patches)."""
        views = crop_window(self.synthesis.make_views(view_input), y0, x0, size)
        f = self.synthesis.encoder(views)[-1]
        return f.reshape(view_input.shape[0], -1, *f.shape[-2:])

    # --------------------------------------------------------------------------------------------- source
    def encode_source(self, src: torch.Tensor, src_fg: torch.Tensor, src_bg: torch.Tensor, src_fk: torch.Tensor,
                      views: bool = True) -> dict[str, torch.Tensor]:
        """Everything that depends only on the source (computed once per source)."""
        m = self.config.motion_size
        kp_s, nk_s, fk_rec = self.keypoints(src_fk, src)
        out = {"src": src, "src_bg": src_bg, "src64": downsample(src, m), "fg64": downsample(src_fg, m),
               "lmk64": landmark_mask(src_fk, self.grid64.to(src.dtype)), "kp_s": kp_s, "nk_s": nk_s,
               "fk_rec_s": fk_rec}
        if self.config.views and views:
            out["view_input"] = view_in = self.view_input(src, src_bg)
            out["view_feats"] = self.synthesis.encode_views(view_in)
        else:
            out["view_feats"] = torch.zeros_like(src[:, :1, :1, :1])
        return out

    # ---------------------------------------------------------------------------------------------- frame
    def frame(
        self, src: torch.Tensor, src_bg: torch.Tensor, src64: torch.Tensor, fg64: torch.Tensor, lmk64: torch.Tensor,
        kp_s: torch.Tensor, view_feats: torch.Tensor, base: torch.Tensor, prior_flow: torch.Tensor,
        drv_fk: torch.Tensor, patch: tuple[int, int, int] | None = None, view_input: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One driving frame. ``base``: the analytic crop; ``prior_flow``: its mesh flow at motion resolution,
        (B, m, m, 2) in [-1, 1]; ``drv_fk``: the target facial keypoints.

        Training may synthesise only a ``patch`` = (y0, x0, size) of the crop (multiples of 16; motion is still
        computed for the whole crop); the view features are then encoded from the same patch of ``view_input``.
        """
        cfg = self.config
        kp_d, nk_d, fk_rec_d = self.keypoints(drv_fk, base)
        grid = self.grid64.to(src.dtype)
        dm = self.dense_motion(src64, fg64, lmk64, kp_s, kp_d, prior_flow if cfg.analytic_prior else None, grid)
        size = src.shape[-1]
        flow = F.interpolate(dm["flow"].permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=True)
        warped = F.grid_sample(src, flow.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                               align_corners=True)
        occ = F.interpolate(dm["occlusion"], size=(size, size), mode="bilinear", align_corners=False)
        x0 = base if cfg.analytic_prior else warped
        x = self._synth_input(x0, warped * occ, occ, src_bg)
        if patch is not None:
            y0, x_0, ps = patch
            x, x0 = crop_window(x, y0, x_0, ps), crop_window(x0, y0, x_0, ps)
            if cfg.views and view_input is not None:
                view_feats = self.window_views(view_input, y0, x_0, ps)
        residual = self.synthesis(x, view_feats if cfg.views else None)
        return {"image": x0 + residual, "warped": warped, "flow": dm["flow"], "occlusion": dm["occlusion"],
                "fg_pred": dm["fg_pred"], "lmk_pred": dm["lmk_pred"], "kp_d": kp_d, "nk_d": nk_d,
                "fk_rec_d": fk_rec_d}

    def forward(self, batch: dict[str, torch.Tensor], patch: tuple[int, int, int] | None = None,
                theta: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training forward: source + frame in one call (keys: src, src_fg, src_bg, src_fk, base, prior_flow,
        drv_fk); with ``patch`` only that patch is synthesised (and the views encoded from it); with ``theta``
        (B, 2, 3) also the neural keypoints of the source resampled by that affine (``nk_t``, equivariance)."""
        # with a patch, the views are encoded from that patch inside frame(): skip the full-size encoding here
        s = self.encode_source(batch["src"], batch["src_fg"], batch["src_bg"], batch["src_fk"], views=patch is None)
        view_input = self.view_input(batch["src"], batch["src_bg"]) if patch is not None and self.config.views else None
        out = self.frame(*(s[k] for k in SOURCE_KEYS), batch["base"], batch["prior_flow"], batch["drv_fk"],
                         patch=patch, view_input=view_input)
        out.update(kp_s=s["kp_s"], nk_s=s["nk_s"], fk_rec_s=s["fk_rec_s"])
        if theta is not None:
            src64 = downsample(batch["src"], 64)
            grid = F.affine_grid(theta.to(src64.dtype), list(src64.shape), align_corners=True)
            out["nk_t"] = self.kp_net(F.grid_sample(src64, grid, padding_mode="border", align_corners=True))
        return out


class FrameNetwork(nn.Module):
    """The per-frame part with positional tensor inputs and the image as the only output (for ONNX).

    With ``window``, only a ``window``² square of the crop is synthesised (the CPU tier's mouth window);
    its origin is the extra int64 input ``origin`` = (y0, x0) and ``view_feats`` are that window's."""

    INPUTS = (*SOURCE_KEYS, "base", "prior_flow", "drv_fk")

    def __init__(self, model: MobilePortrait, window: int | None = None) -> None:
        super().__init__()
        self.model, self.window = model, window

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.INPUTS + (("origin",) if self.window else ())

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if not self.window:
            return self.model.frame(*tensors)["image"].clamp(0.0, 1.0)
        *inputs, origin = tensors
        return self.model.frame(*inputs, patch=(origin[0], origin[1], self.window))["image"].clamp(0.0, 1.0)
