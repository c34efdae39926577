"""The audio-to-motion network: attention masks, KL term, causality of the lip branch, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceanim.models.audio2motion.masks import alignment_mask, periodic_causal_bias, periodic_positional_encoding
from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig, kl_divergence

TINY = Audio2MotionConfig(d_model=32, n_heads=2, ff_dim=64, lip_layers=2, vae_layers=1, latent_dim=4, dropout=0.0)


def test_causal_bias_blocks_the_future_and_decays_per_period() -> None:
    b = periodic_causal_bias(60, 4, period=25)
    assert b.shape == (4, 60, 60)
    i, j = torch.triu_indices(60, 60, offset=1)
    assert torch.isinf(b[:, i, j]).all() and (b[:, i, j] < 0).all()  # every future frame masked
    assert torch.isfinite(b[0]).sum() == 60 * 61 // 2  # the past and present are all visible
    assert b[0, 30, 30] == 0 and b[0, 30, 6] == b[0, 30, 10] and b[0, 30, 5] < b[0, 30, 6]  # steps per period
    assert (b[1, 40, :41] >= b[0, 40, :41]).all()  # head 0 has the steepest slope: it sees least far back


def test_non_causal_bias_is_the_mirrored_causal_one() -> None:
    c = periodic_causal_bias(60, 4, period=25)
    n = periodic_causal_bias(60, 4, period=25, causal=False)
    assert torch.isfinite(n).all() and torch.equal(torch.tril(n[0]), torch.tril(c[0]))  # the past is unchanged
    assert torch.equal(n, n.transpose(1, 2))  # a future frame is weighted like the past one as far away


def test_non_causal_lip_branch_config_changes_only_the_mask() -> None:
    torch.manual_seed(0)
    a = Audio2Motion(TINY).eval()
    b = Audio2Motion(Audio2MotionConfig(**{**TINY.to_dict(), "lip_causal": False})).eval()
    b.load_state_dict(a.state_dict())  # same parameters: warm starts across the flag work
    feats, style = torch.randn(1, 40, 320), torch.randn(1, TINY.style_points * 3)
    noise = torch.zeros(1, 4, TINY.latent_dim)
    with torch.no_grad():
        assert not torch.allclose(a(feats, style, noise=noise).mouth, b(feats, style, noise=noise).mouth)


def test_alignment_mask_is_a_diagonal_band() -> None:
    m = alignment_mask(10, 10, width=0)
    assert torch.equal(torch.isfinite(m), torch.eye(10, dtype=torch.bool))
    band = torch.isfinite(alignment_mask(10, 12, width=2))
    for i in range(10):
        assert band[i].nonzero().ravel().tolist() == [j for j in range(12) if abs(i - j) <= 2]


def test_periodic_positional_encoding_repeats() -> None:
    pe = periodic_positional_encoding(80, 16, period=25)
    assert torch.allclose(pe[3], pe[28]) and torch.allclose(pe[3], pe[53])
    assert not torch.allclose(pe[3], pe[4])


def test_kl_term() -> None:
    mu = torch.randn(3, 5, 4)
    lv = torch.randn(3, 5, 4) * 0.3
    assert kl_divergence(mu, lv, mu, lv).item() == pytest.approx(0.0, abs=1e-6)
    q = torch.distributions.Normal(mu, (0.5 * lv).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    ours = kl_divergence(mu, lv, torch.zeros_like(mu), torch.zeros_like(lv))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5) and ours.item() > 0


def test_lip_branch_does_not_see_far_future_audio() -> None:
    torch.manual_seed(0)
    net = Audio2Motion(TINY).eval()
    feats = torch.randn(1, 40, 320)
    later = feats.clone()
    later[:, 30:] += 5.0  # change the audio from frame 30 on
    # the lip branch alone: causal self-attention + cross-attention within ±align_width frames
    def lip(f: torch.Tensor) -> torch.Tensor:
        s_a = net.frame_features(f)
        x = s_a + periodic_positional_encoding(40, TINY.d_model, TINY.period)
        bias = periodic_causal_bias(40, TINY.n_heads, TINY.period)[None]
        align = alignment_mask(40, 40, TINY.align_width)[None, None]
        for blk in net.lip:
            x = blk(x, bias, s_a, align)
        return x

    with torch.no_grad():
        a, b = lip(feats), lip(later)
    # frame_features has a 5-tap conv (2 frames each side) and cross-attention sees 2 more frames ahead
    reach = 2 + TINY.align_width
    assert torch.allclose(a[:, : 30 - reach], b[:, : 30 - reach], atol=1e-5)
    assert not torch.allclose(a[:, 30:], b[:, 30:])


def test_forward_shapes_and_posterior_vs_prior() -> None:
    torch.manual_seed(0)
    net = Audio2Motion(TINY).train()
    feats, style = torch.randn(2, 33, 320), torch.randn(2, TINY.style_points * 3)
    other = torch.randn(2, 33, TINY.eye_points * 3 + TINY.pose_dim) * 0.05
    out = net(feats, style, target_other=other)
    assert out.mouth.shape == (2, 33, TINY.mouth_points, 3) and out.dense.shape == (2, 33, 478, 3)
    assert out.pose.shape == (2, 33, 6) and out.kl.item() > 0
    net.eval()
    noise = torch.zeros(2, int(np.ceil(33 / TINY.latent_stride)), TINY.latent_dim)
    with torch.no_grad():
        a, b = net(feats, style, noise=noise), net(feats, style, noise=noise)
        c = net(feats, style, noise=noise + 1.0)
    assert torch.equal(a.pose, b.pose) and not torch.allclose(a.pose, c.pose)
    assert out.kl.requires_grad


def test_free_bits_floor_per_dimension_and_kl_sum() -> None:
    from faceanim.models.audio2motion.network import free_bits_kl, kl_divergence, kl_per_dim

    torch.manual_seed(0)
    mu_q, lv_q = torch.randn(2, 4, TINY.latent_dim), torch.randn(2, 4, TINY.latent_dim) * 0.1
    mu_p, lv_p = torch.zeros_like(mu_q), torch.zeros_like(lv_q)
    dims = kl_per_dim(mu_q, lv_q, mu_p, lv_p)
    assert dims.shape == (TINY.latent_dim,) and torch.allclose(dims.sum(), kl_divergence(mu_q, lv_q, mu_p, lv_p))
    assert torch.equal(free_bits_kl(dims, 0.0), dims.sum())
    floor = float(dims.max()) + 1.0  # every dimension below the floor: a constant, no gradient towards the prior
    mu = mu_q.clone().requires_grad_(True)
    fb = free_bits_kl(kl_per_dim(mu, lv_q, mu_p, lv_p), floor)
    assert fb.item() == pytest.approx(floor * TINY.latent_dim)
    fb.backward()
    assert mu.grad is not None and float(mu.grad.abs().max()) == 0.0


def test_isolated_mouth_does_not_train_the_probabilistic_branch() -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    feats, style = torch.randn(1, 20, 320), torch.randn(1, TINY.style_points * 3)
    other = torch.randn(1, 20, TINY.eye_points * 3 + TINY.pose_dim) * 0.05
    grads = {}
    for iso in (False, True):
        torch.manual_seed(1)
        net = Audio2Motion(replace(TINY, isolate_mouth=iso, vae_dropout=0.0)).train()
        torch.manual_seed(2)
        out = net(feats, style, target_other=other)
        out.mouth.square().sum().backward()
        grads[iso] = (net.dec[0].ff[0].weight.grad, net.mouth_head.weight.grad)
        with torch.no_grad():  # same function of the inputs either way
            torch.manual_seed(2)
            assert torch.allclose(net(feats, style, target_other=other).mouth, out.mouth.detach(), atol=1e-6)
    assert grads[False][0] is not None and float(grads[False][0].abs().max()) > 0
    assert grads[True][0] is None or float(grads[True][0].abs().max()) == 0.0
    assert torch.allclose(grads[False][1], grads[True][1], atol=1e-6)  # the mouth head itself still learns
