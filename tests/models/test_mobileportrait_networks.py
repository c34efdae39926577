"""MobilePortrait networks: the analytic prior at step 0, TPS interpolation, the exportable solver, tiers, ONNX."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceanim.models import create_model, list_models  # noqa: E402
from faceanim.models.mobileportrait.layers import solve  # noqa: E402
from faceanim.models.mobileportrait.model import SOURCE_KEYS  # noqa: E402
from faceanim.models.mobileportrait.motion import make_grid, tps_flows  # noqa: E402


def _inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = model.config.size
    fk = torch.rand(1, 106, 2, generator=g) * 1.2 - 0.6
    src = torch.rand(1, 3, s, s, generator=g)
    with torch.no_grad():
        code = model.encode_source(src, torch.rand(1, 1, s, s, generator=g), torch.rand(1, 3, s, s, generator=g), fk)
    base = torch.rand(1, 3, s, s, generator=g)
    prior = model.grid64[None] + 0.03 * torch.randn(1, 64, 64, 2, generator=g)
    return [code[k] for k in SOURCE_KEYS] + [base, prior, fk + 0.05 * torch.randn(fk.shape, generator=g)]


def test_untrained_network_reproduces_the_analytic_renderer_exactly():
    model = create_model("mobileportrait_cpu").eval()
    inputs = _inputs(model)
    with torch.no_grad():
        out = model.frame(*inputs)
    assert torch.equal(out["image"], inputs[SOURCE_KEYS.__len__()])  # the base (analytic crop), bit for bit
    # and the motion starts from the analytic flow: the prior candidate dominates the softmax
    assert (out["flow"] - inputs[-2]).abs().max() < 0.1


def test_tps_maps_driving_keypoints_onto_source_keypoints():
    g = torch.Generator().manual_seed(1)
    kp_d = torch.rand(2, 10, 2, generator=g) * 1.6 - 0.8
    kp_s = kp_d + 0.1 * torch.randn(kp_d.shape, generator=g)
    # evaluate each group's spline at its own control points (a 5x1 "grid" per group)
    flows = torch.stack([tps_flows(kp_d, kp_s, kp_d[b, 5 * k: 5 * k + 5].view(5, 1, 2))[b, k].view(5, 2)
                         for b in range(2) for k in range(2)])
    expected = torch.stack([kp_s[b, 5 * k: 5 * k + 5] for b in range(2) for k in range(2)])
    # a slightly regularised (smoothing) spline: within 10 % of the displacement at its control points
    start = torch.stack([kp_d[b, 5 * k: 5 * k + 5] for b in range(2) for k in range(2)])
    assert (flows - expected).norm(dim=-1).max() < 0.1 * (expected - start).norm(dim=-1).min() + 1e-2
    # and identical keypoints give the identity warp
    grid = make_grid(16)
    ident = tps_flows(kp_d, kp_d, grid)
    assert torch.allclose(ident, grid.expand_as(ident), atol=1e-4)


def test_exportable_solver_matches_linalg_solve_including_zero_pivots():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 8, 8, generator=g, dtype=torch.float64)
    a[:, 0, 0] = 0.0  # Gauss-Jordan without pivoting would divide by zero here
    b = torch.randn(4, 8, 2, generator=g, dtype=torch.float64)
    assert torch.allclose(solve(a, b), torch.linalg.solve(a, b), atol=1e-8)


def test_tiers_and_ablations_are_configs_of_one_network():
    from torch.utils.flop_counter import FlopCounterMode

    names = list_models()
    for required in ("mobileportrait_cpu", "mobileportrait_4g", "mobileportrait_7g", "mobileportrait_16g",
                     "mobileportrait_cpu_nk_only", "mobileportrait_cpu_fk_only", "mobileportrait_cpu_views0",
                     "mobileportrait_cpu_views8", "mobileportrait_cpu_no_residual_flow",
                     "mobileportrait_cpu_no_pseudo_background", "mobileportrait_cpu_no_analytic_prior"):
        assert required in names
    flops = {}
    for name in ("mobileportrait_cpu", "mobileportrait_4g", "mobileportrait_7g"):
        model = create_model(name).eval()
        inputs = _inputs(model)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model.frame(*inputs)
        flops[name] = fc.get_total_flops() / 2e9  # GMACs ("GFLOPs" as the papers count)
    assert flops["mobileportrait_cpu"] < 1.5 < flops["mobileportrait_4g"] < flops["mobileportrait_7g"]
    with pytest.raises(ValueError, match="unknown model"):
        create_model("mobileportrait_nope")


def test_ablation_without_prior_ignores_the_analytic_inputs():
    model = create_model("mobileportrait_cpu_no_analytic_prior").eval()
    inputs = _inputs(model)
    with torch.no_grad():
        a = model.frame(*inputs)["image"]
        inputs[-3] = torch.zeros_like(inputs[-3]) + 0.5  # a different base: only the NK input sees it
        inputs[-2] = torch.zeros_like(inputs[-2])
        b = model.frame(*inputs)["image"]
    assert a.shape == b.shape == (1, 3, 256, 256)


def test_onnx_export_matches_pytorch_within_1e3():
    pytest.importorskip("onnxruntime")
    from faceanim.train.export import export_bytes, onnx_session, parity

    torch.manual_seed(0)
    model = create_model("mobileportrait_cpu").eval()
    with torch.no_grad():  # wake the zero-initialised branches, so parity covers every layer
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0.0, 0.02)
    session = onnx_session(export_bytes(model), threads=1)
    assert parity(model, session, seeds=(3,)) <= 1e-3


def test_onnx_export_of_the_mouth_window_takes_its_origin_as_an_input():
    pytest.importorskip("onnxruntime")
    from faceanim.models.mobileportrait.model import FrameNetwork
    from faceanim.train.export import example_inputs, export_bytes, onnx_session, parity, run_session

    torch.manual_seed(0)
    model = create_model("mobileportrait_cpu").eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0.0, 0.02)
    session = onnx_session(export_bytes(model, window=128), threads=1)
    assert parity(model, session, seeds=(4,), window=128) <= 1e-3
    # one graph serves every window position: move the origin and the output follows the PyTorch network
    inputs = example_inputs(model, 5, window=128)
    inputs[-1] = torch.tensor([32, 96])
    with torch.no_grad():
        ref = FrameNetwork(model, 128)(*inputs).numpy()
    assert ref.shape == (1, 3, 128, 128)
    assert np.abs(run_session(session, inputs) - ref).max() <= 1e-3
    inputs[-1] = torch.tensor([128, 0])
    with torch.no_grad():
        moved = FrameNetwork(model, 128)(*inputs).numpy()
    assert np.abs(moved - ref).mean() > 1e-3 and np.abs(run_session(session, inputs) - moved).max() <= 1e-3
