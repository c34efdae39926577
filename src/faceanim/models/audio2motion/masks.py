"""Attention masks and positional encodings of the lip branch (FaceFormer/MODA): periodic positional encoding,
the causal periodic linear bias (Γ, M_T) and the diagonal audio alignment mask (M_A)."""

from __future__ import annotations

import math

import torch

__all__ = ["alibi_slopes", "alignment_mask", "periodic_causal_bias", "periodic_positional_encoding"]


def periodic_positional_encoding(length: int, dim: int, period: int) -> torch.Tensor:
    """Sinusoidal encoding of ``t mod period`` ``(length, dim)``: repeats every ``period`` frames, so any
    sequence length works without extrapolating positions."""
    pos = (torch.arange(length) % period).float()[:, None]
    div = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """One slope per head, 2^(-8h/H) (ALiBi)."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / n_heads) for h in range(n_heads)])


def periodic_causal_bias(length: int, n_heads: int, period: int, causal: bool = True) -> torch.Tensor:
    """Additive self-attention bias ``(n_heads, length, length)``: ``-slope · floor((i - j) / period)`` for
    ``j <= i`` and ``-inf`` for future frames ``j > i`` (causal). ``causal=False`` (offline windows): future
    frames get the mirrored bias ``-slope · floor((j - i) / period)`` instead of ``-inf``."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None]
    dist = torch.div((i - j) if causal else (i - j).abs(), period, rounding_mode="floor").float()
    bias = -alibi_slopes(n_heads)[:, None, None] * dist[None]
    return bias.masked_fill((j > i)[None], float("-inf")) if causal else bias


def alignment_mask(length: int, audio_length: int | None = None, width: int = 0) -> torch.Tensor:
    """Cross-attention mask ``(length, audio_length)``: frame i may attend to audio frame j only if
    ``|i - j| <= width`` (0 on the diagonal band, ``-inf`` elsewhere)."""
    audio_length = length if audio_length is None else audio_length
    i = torch.arange(length)[:, None]
    j = torch.arange(audio_length)[None]
    return torch.zeros(length, audio_length).masked_fill((i - j).abs() > width, float("-inf"))
