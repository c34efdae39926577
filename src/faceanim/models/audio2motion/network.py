"""Audio-to-motion (MODA §3.2–3.3, small enough for 50× real time on a CPU).

Mapping: per-frame audio features s_a (4 log-mel frames each) ⊕ tile(v_s), the subject's style code from its
canonical landmarks → s. Dual attention: a specific lip branch (causal self-attention with periodic positional
encoding and periodic linear bias, cross-attention to the audio under the diagonal alignment mask) and a
probabilistic branch (a transformer CVAE: learned prior μ, σ from s, posterior from the true motion during
training, resampling, KL) for pose, eyes and brows. The two are concatenated into three heads (mouth
displacements, eye/brow displacements, head pose) and a facial composer turns mouth + eyes + subject into a
dense, consistent face (trained with L1 and an LSGAN discriminator).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from faceanim.models.audio2motion.masks import alignment_mask, periodic_causal_bias, periodic_positional_encoding

__all__ = ["Audio2Motion", "Audio2MotionConfig", "Audio2MotionOutput", "Discriminator", "free_bits_kl", "kl_divergence",
           "kl_per_dim"]


@dataclass(frozen=True)
class Audio2MotionConfig:
    """Sizes of the network (stored beside the weights)."""

    n_mels: int = 80
    mels_per_frame: int = 4
    audio_dim: int = 0  # > 0: per-frame features come from a speech encoder of this width instead of log-mels
    d_model: int = 128
    n_heads: int = 4
    ff_dim: int = 256
    lip_layers: int = 2
    vae_layers: int = 2
    latent_dim: int = 16
    latent_stride: int = 10  # frames per latent token (smooth pose and blinks)
    period: int = 25
    align_width: int = 2  # audio frames either side a lip frame may look at
    lip_causal: bool = True  # False: the lip self-attention also sees later frames of the window (offline use)
    style_points: int = 149
    mouth_points: int = 55
    eye_points: int = 52
    dense_points: int = 478
    pose_dim: int = 6  # yaw, pitch, roll (10° units), x, y (face radii), log scale
    disp_scale: float = 0.05  # landmark displacements are predicted in these canonical units
    dropout: float = 0.1
    vae_dropout: float = -1.0  # dropout of the probabilistic branch (< 0: same as ``dropout``)
    # True: the mouth head reads the probabilistic branch's features but its loss does not train that branch (the
    # strong lip objectives otherwise teach the decoder to ignore the latent: posterior collapse)
    isolate_mouth: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Audio2MotionOutput:
    mouth: torch.Tensor  # (B, T, mouth_points, 3) displacement from the subject's rest face
    eyes: torch.Tensor  # (B, T, eye_points, 3)
    pose: torch.Tensor  # (B, T, pose_dim) relative to the window's mean pose
    dense: torch.Tensor  # (B, T, dense_points, 3) composed full-face displacement
    kl: torch.Tensor  # scalar KL(q || p) (0 when sampling from the prior)
    kl_dims: torch.Tensor | None = None  # (latent_dim,) KL per latent dimension, averaged over batch and tokens


def kl_divergence(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
                  ) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)), summed over the latent dims, averaged over the rest."""
    return kl_per_dim(mu_q, logvar_q, mu_p, logvar_p).sum()


def kl_per_dim(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
               ) -> torch.Tensor:
    """KL(q || p) per latent dimension (last axis), averaged over all the others: (latent_dim,)."""
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)
    return kl.reshape(-1, kl.shape[-1]).mean(0)


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float) -> torch.Tensor:
    """KL with free bits (Kingma et al. 2016, IAF §C.8): sum over latent dims of max(free_bits, KL_j), KL_j the
    per-dimension KL averaged over the minibatch. Below the floor a dimension's KL costs nothing, so the optimiser
    has no incentive to collapse it onto the prior; above it the ordinary KL applies."""
    if free_bits <= 0:
        return kl_dims.sum()
    return torch.clamp(kl_dims, min=free_bits).sum()


class _Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.h = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        self.p = dropout

    def forward(self, x: torch.Tensor, mem: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.h, d // self.h).transpose(1, 2)
        k, v = self.kv(mem).view(b, mem.shape[1], 2, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.n1, self.att = nn.LayerNorm(d), _Attention(d, heads, dropout)
        self.cross = _Attention(d, heads, dropout) if cross else None
        self.n2 = nn.LayerNorm(d) if cross else None
        self.n3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None, mem: torch.Tensor | None = None,
                mem_bias: torch.Tensor | None = None) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.drop(self.att(h, h, bias))
        if self.cross is not None and mem is not None and self.n2 is not None:
            x = x + self.drop(self.cross(self.n2(x), mem, mem_bias))
        return x + self.drop(self.ff(self.n3(x)))


def _sinusoid(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length).float()[:, None]
    div = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


class Audio2Motion(nn.Module):
    """Speech features + subject style → mouth, eye/brow and pose displacements and a composed dense face."""

    def __init__(self, config: Audio2MotionConfig = Audio2MotionConfig()) -> None:
        super().__init__()
        c = self.config = config
        d = c.d_model
        in_dim = c.audio_dim if c.audio_dim > 0 else c.n_mels * c.mels_per_frame
        self.register_buffer("feat_mean", torch.zeros(in_dim))
        self.register_buffer("feat_std", torch.ones(in_dim))
        self.audio = nn.Sequential(nn.Linear(in_dim, d), nn.GELU(), nn.Dropout(c.dropout))
        self.audio_conv = nn.Conv1d(d, d, kernel_size=5, padding=2, groups=4)
        self.style = nn.Sequential(nn.Linear(c.style_points * 3, d), nn.GELU(), nn.Linear(d, d))
        self.mix = nn.Linear(2 * d, d)  # s = s_a ⊕ tile(v_s)
        # specific (lip) branch
        self.lip = nn.ModuleList(_Block(d, c.n_heads, c.ff_dim, c.dropout, cross=True) for _ in range(c.lip_layers))
        # probabilistic branch: posterior encoder (training), learned prior, decoder
        other = (c.eye_points * 3) + c.pose_dim
        self.post_in = nn.Linear(d + other, d)
        vdrop = c.dropout if c.vae_dropout < 0 else c.vae_dropout
        self.post = _Block(d, c.n_heads, c.ff_dim, vdrop, cross=False)
        self.post_out = nn.Linear(d, 2 * c.latent_dim)
        self.prior = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2 * c.latent_dim))
        self.z_in = nn.Linear(c.latent_dim, d)
        self.dec = nn.ModuleList(_Block(d, c.n_heads, c.ff_dim, vdrop, cross=False) for _ in range(c.vae_layers))
        self.norm = nn.LayerNorm(2 * d)
        self.mouth_head = nn.Linear(2 * d, c.mouth_points * 3)
        self.eye_head = nn.Linear(2 * d, c.eye_points * 3)
        self.pose_head = nn.Linear(2 * d, c.pose_dim)
        comp_in = (c.mouth_points + c.eye_points) * 3 + d
        self.composer = nn.Sequential(nn.Linear(comp_in, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(),
                                      nn.Linear(256, c.dense_points * 3))

    # ---------------------------------------------------------------------------------------- pieces
    def frame_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, in_dim) per-frame audio features (4 log-mel frames flattened, or encoder features) → s_a."""
        x = (feats - self.feat_mean) / self.feat_std
        x = self.audio(x)
        return x + self.audio_conv(x.transpose(1, 2)).transpose(1, 2)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d) → (B, ceil(T / stride), d) mean over each latent token's frames."""
        s = self.config.latent_stride
        t = x.shape[1]
        pad = (-t) % s
        if pad:
            x = torch.cat([x, x[:, -1:].expand(-1, pad, -1)], 1)
        return x.view(x.shape[0], -1, s, x.shape[2]).mean(2)

    def _upsample(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """(B, K, L) latent tokens → (B, length, L), linearly interpolated between token centres (smooth)."""
        if z.shape[1] == 1:
            return z.expand(-1, length, -1)
        return F.interpolate(z.transpose(1, 2), size=length, mode="linear", align_corners=False).transpose(1, 2)

    def forward(self, feats: torch.Tensor, style: torch.Tensor, target_other: torch.Tensor | None = None,
                noise: torch.Tensor | None = None, temperature: float = 1.0) -> Audio2MotionOutput:
        """``feats`` (B, T, in_dim), ``style`` (B, style_points·3). With ``target_other`` (B, T, eye·3 + pose)
        the latent comes from the posterior (training); otherwise it is drawn from the learned prior with
        ``noise`` (B, ceil(T / latent_stride), latent_dim) or fresh Gaussian noise."""
        c = self.config
        b, t, _ = feats.shape
        s_a = self.frame_features(feats)
        v_s = self.style(style)[:, None].expand(-1, t, -1)
        s = self.mix(torch.cat([s_a, v_s], -1))
        # lip branch
        x = s + periodic_positional_encoding(t, c.d_model, c.period).to(s)
        bias = periodic_causal_bias(t, c.n_heads, c.period, c.lip_causal).to(s)[None]
        align = alignment_mask(t, t, c.align_width).to(s)[None, None]
        for blk in self.lip:
            x = blk(x, bias, s_a, align)
        # probabilistic branch
        pooled = self._pool(s)
        mu_p, logvar_p = self.prior(pooled).chunk(2, -1)
        logvar_p = logvar_p.clamp(-6.0, 4.0)
        if target_other is not None:
            n_eye = c.eye_points * 3
            other = torch.cat([target_other[..., :n_eye] / c.disp_scale, target_other[..., n_eye:]], -1)
            h = self.post(self.post_in(torch.cat([s, other], -1)))
            mu_q, logvar_q = self.post_out(self._pool(h)).chunk(2, -1)
            logvar_q = logvar_q.clamp(-6.0, 4.0)
            eps = torch.randn_like(mu_q)
            z = mu_q + eps * (0.5 * logvar_q).exp()
            kl_dims = kl_per_dim(mu_q, logvar_q, mu_p, logvar_p)
            kl = kl_dims.sum()
        else:
            eps = torch.randn_like(mu_p) if noise is None else noise.to(mu_p)[:, : mu_p.shape[1]]
            z = mu_p + temperature * eps * (0.5 * logvar_p).exp()
            kl = torch.zeros((), device=s.device)
            kl_dims = torch.zeros(c.latent_dim, device=s.device)
        y = s + self.z_in(self._upsample(z, t)) + _sinusoid(t, c.d_model).to(s)
        for blk in self.dec:
            y = blk(y)
        hcat = self.norm(torch.cat([x, y], -1))
        # same value; with isolate_mouth the mouth's gradient stops at the probabilistic branch's output
        hm = self.norm(torch.cat([x, y.detach()], -1)) if c.isolate_mouth and torch.is_grad_enabled() else hcat
        mouth = self.mouth_head(hm).view(b, t, c.mouth_points, 3) * c.disp_scale
        eyes = self.eye_head(hcat).view(b, t, c.eye_points, 3) * c.disp_scale
        pose = self.pose_head(hcat)
        dense = self.compose(mouth, eyes, style)
        return Audio2MotionOutput(mouth, eyes, pose, dense, kl, kl_dims)

    def compose(self, mouth: torch.Tensor, eyes: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Facial composer: mouth + eye/brow displacements + subject → dense (B, T, 478, 3) displacement."""
        b, t = mouth.shape[:2]
        v = self.style(style)[:, None].expand(-1, t, -1)
        k = 1.0 / self.config.disp_scale
        x = torch.cat([mouth.reshape(b, t, -1) * k, eyes.reshape(b, t, -1) * k, v], -1)
        return self.composer(x).view(b, t, self.config.dense_points, 3) * self.config.disp_scale


class Discriminator(nn.Module):
    """LSGAN discriminator on one frame's dense displacement (+ subject style): real faces → 1, composed → 0."""

    def __init__(self, config: Audio2MotionConfig = Audio2MotionConfig()) -> None:
        super().__init__()
        self.scale = config.disp_scale
        self.net = nn.Sequential(
            nn.Linear(config.dense_points * 3 + config.style_points * 3, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1),
        )

    def forward(self, dense: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, t = dense.shape[:2]
        x = torch.cat([dense.reshape(b, t, -1) / self.scale, style[:, None].expand(-1, t, -1)], -1)
        return self.net(x).squeeze(-1)
