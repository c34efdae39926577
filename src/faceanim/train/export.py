"""ONNX export of MobilePortrait's per-frame network (``faceanim export``) and the onnxruntime session for it.

The per-source part (neural keypoints of the source, masks, view features) runs once in PyTorch; what runs
per frame (driving keypoints, TPS, dense motion, warp, synthesis) is one ONNX graph whose inputs are the
per-source tensors plus the frame's analytic crop, prior flow and target keypoints.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from faceanim.errors import FaceAnimError
from faceanim.media.atomic import atomic_output
from faceanim.models.mobileportrait.config import MobilePortraitConfig
from faceanim.models.mobileportrait.model import SOURCE_KEYS, FrameNetwork, MobilePortrait
from faceanim.train.checkpoint import load_tensors

OPSET = 17
PARITY_TOLERANCE = 1e-3


def load_model(weights: Path) -> MobilePortrait:
    """A MobilePortrait network with the weights (and config) of a training safetensors file."""
    tensors, meta = load_tensors(weights)
    if "config" not in meta:
        raise FaceAnimError("not a MobilePortrait weights file (no config in its metadata)", path=weights)
    model = MobilePortrait(MobilePortraitConfig.from_dict(meta["config"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise FaceAnimError(f"weights do not fit the network ({str(exc).splitlines()[0]})", path=weights) from exc
    return model.eval()


def example_inputs(model: MobilePortrait, seed: int = 0, window: int | None = None) -> list[torch.Tensor]:
    """Plausible per-frame inputs (random source, a mildly perturbed prior) in ``FrameNetwork(model,
    window).inputs`` order (with a window: that window's view features and its origin last)."""
    g = torch.Generator().manual_seed(seed)
    s, m = model.config.size, model.config.motion_size
    src = torch.rand(1, 3, s, s, generator=g)
    fk = torch.rand(1, model.num_fk, 2, generator=g) * 1.2 - 0.6
    with torch.no_grad():
        code = model.encode_source(src, torch.rand(1, 1, s, s, generator=g), torch.rand(1, 3, s, s, generator=g), fk)
    prior = model.grid64.unsqueeze(0) + 0.02 * torch.randn(1, m, m, 2, generator=g)
    tensors = [code[k] for k in SOURCE_KEYS] + [torch.rand(1, 3, s, s, generator=g), prior,
                                                 fk + 0.02 * torch.randn(fk.shape, generator=g)]
    if not window:
        return tensors
    y0, x0 = (16 * int(v) for v in torch.randint(0, (s - window) // 16 + 1, (2,), generator=g))
    if model.config.views:
        tensors[SOURCE_KEYS.index("view_feats")] = model.window_views(code["view_input"], y0, x0, window)
    return [*tensors, torch.tensor([y0, x0], dtype=torch.int64)]


def export_bytes(model: MobilePortrait, window: int | None = None) -> bytes:
    """The per-frame network (synthesising the whole crop, or a ``window``² square of it) as ONNX bytes."""
    net = FrameNetwork(model.eval(), window)
    buf = io.BytesIO()
    unets = (model.dense_motion, model.synthesis)
    bf16 = [u.bf16 for u in unets]
    try:
        for u in unets:  # the graph is fp32: onnxruntime's CPU convolutions take no bf16
            u.bf16 = False
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, tuple(example_inputs(model, window=window)), buf, input_names=list(net.inputs),
                              output_names=["image"], opset_version=OPSET, dynamo=False)
    finally:
        for u, b in zip(unets, bf16, strict=True):
            u.bf16 = b
    return buf.getvalue()


def onnx_session(model_bytes: bytes, threads: int = 2):
    """An onnxruntime CPU session for the exported graph."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def run_session(session, tensors: list[torch.Tensor]) -> np.ndarray:
    """Run the exported graph on tensors in ``FrameNetwork.inputs`` order (``origin`` last, with a window)."""
    names = {i.name for i in session.get_inputs()}  # the exporter drops inputs a config does not use
    order = FrameNetwork.INPUTS + (("origin",) if len(tensors) > len(FrameNetwork.INPUTS) else ())
    feed = {k: t.detach().numpy() for k, t in zip(order, tensors, strict=True) if k in names}
    return session.run(["image"], feed)[0]


def parity(model: MobilePortrait, session, seeds: tuple[int, ...] = (0, 1, 2), window: int | None = None) -> float:
    """Max abs difference between PyTorch (fp32) and onnxruntime outputs on example inputs."""
    worst = 0.0
    net = FrameNetwork(model.eval(), window)
    for seed in seeds:
        inputs = example_inputs(model, seed, window)
        with torch.no_grad():
            ref = net(*inputs).numpy()
        worst = max(worst, float(np.abs(run_session(session, inputs) - ref).max()))
    return worst


def export_onnx(weights: Path, output: Path, check: bool = True) -> Path:
    """Export the weights' per-frame network to ``output``; with ``check``, verify onnxruntime parity."""
    model = load_model(weights)
    data = export_bytes(model)
    if check:
        err = parity(model, onnx_session(data))
        if err > PARITY_TOLERANCE:
            raise FaceAnimError(f"onnxruntime differs from PyTorch by {err:.2e} (> {PARITY_TOLERANCE})", path=output)
    with atomic_output(output) as tmp:
        tmp.write_bytes(data)
    return output
