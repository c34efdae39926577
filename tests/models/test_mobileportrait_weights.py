"""The shipped MobilePortrait weights load, render a real portrait through the pipeline, and are trained."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceanim.errors import FaceAnimError  # noqa: E402
from faceanim.render.mobileportrait import DEFAULT_WEIGHTS, weights_dir  # noqa: E402

SHIPPED = weights_dir() / DEFAULT_WEIGHTS


def test_shipped_weights_are_safetensors_with_their_config_and_card():
    from faceanim.models.mobileportrait.config import TIERS
    from faceanim.train.checkpoint import load_tensors
    from faceanim.train.export import load_model

    assert SHIPPED.is_file(), "weights/mobileportrait_cpu.safetensors is shipped in the repository"
    assert SHIPPED.stat().st_size < 50e6
    model = load_model(SHIPPED)
    assert model.config == TIERS["mobileportrait_cpu"]
    _, meta = load_tensors(SHIPPED)
    assert meta["state"]["step"] > 0 and meta["state"]["samples"] > 0
    # trained: the zero-initialised output layer has moved away from zero
    assert float(model.synthesis.out.weight.abs().max()) > 0.0
    assert (SHIPPED.parent / "mobileportrait_cpu.md").is_file()
    # resumable: the optimizer state ships beside the weights, also as safetensors
    assert SHIPPED.with_name("mobileportrait_cpu.optim.safetensors").is_file()


def test_mobileportrait_renders_a_real_portrait_through_the_pipeline(portrait):
    from faceanim.media import read_image
    from faceanim.motion.types import Motion
    from faceanim.pipeline.animator import Animator, AnimatorConfig

    image = read_image(portrait("liveportrait_s42.jpg"))
    crops = {}
    for name in ("analytic", "mobileportrait"):
        anim = Animator.prepare(image, AnimatorConfig(renderer=name, crop_only=True))
        still = Motion.from_state(anim.source.state)
        crops[name] = anim.animate(still, still).image
    out, ref = crops["mobileportrait"].astype(np.float32), crops["analytic"].astype(np.float32)
    assert out.shape == (256, 256, 3)
    d = np.abs(out - ref).mean()
    assert 0.0 < d < 20.0  # a refinement of the analytic prior: different, but the same face


def test_bad_weights_file_is_a_one_line_error(tmp_path):
    from faceanim.render.registry import create_renderer

    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(FaceAnimError, match=r"broken\.safetensors"):
        create_renderer("mobileportrait", weights=bad)
    with pytest.raises(FaceAnimError, match="not found"):
        create_renderer("mobileportrait", weights=tmp_path / "missing.safetensors")



def test_the_cpu_tier_synthesises_only_around_the_mouth_and_leaves_the_eyes_alone(portrait):
    from faceanim.media import read_image
    from faceanim.motion.transfer import TransferConfig, transfer_motion
    from faceanim.motion.types import Motion
    from faceanim.pipeline.animator import Animator, AnimatorConfig
    from faceanim.render.base import render_crop
    from faceanim.render.mobileportrait import MOUTH_WINDOW

    anim = Animator.prepare(read_image(portrait("liveportrait_s42.jpg")), AnimatorConfig(renderer="mobileportrait"))
    src, prepared, renderer = anim.source, anim.faces[0].renderer_state, anim.renderer
    ref = Motion.from_state(src.state)
    target = transfer_motion(src.state, ref, ref, TransferConfig(lip_open=0.6))  # a wide-open mouth
    inputs, _, base = renderer.frame_inputs(prepared, target)
    y0, x0 = (int(v) for v in inputs[-1])
    lips = target.landmarks[renderer.lips, :2]
    assert (lips >= [x0, y0]).all() and (lips < [x0 + MOUTH_WINDOW, y0 + MOUTH_WINDOW]).all()
    out = renderer.render(prepared, target)
    crop = render_crop(src, out).astype(np.int16)
    outside = np.ones(crop.shape[:2], bool)
    outside[y0:y0 + MOUTH_WINDOW, x0:x0 + MOUTH_WINDOW] = False
    from faceanim.face.model import LEFT_EYE_LIDS, RIGHT_EYE_LIDS

    lids = [lower for pairs in (RIGHT_EYE_LIDS, LEFT_EYE_LIDS) for _, lower in pairs]
    outside[: int(np.ceil(target.landmarks[lids, 1].max())) + 3] = True  # down to just under the lower eyelids
    assert y0 < target.landmarks[lids, 1].max()  # (this window does reach the eyes)
    assert np.abs(crop - base.astype(np.int16))[outside].max() <= 1  # the analytic pixels, untouched
    assert np.abs(crop - base.astype(np.int16))[~outside].mean() > 0.05  # the network drew the mouth


def test_bf16_unets_render_like_fp32(portrait):
    from faceanim.media import read_image
    from faceanim.motion.transfer import TransferConfig, transfer_motion
    from faceanim.motion.types import Motion
    from faceanim.pipeline.animator import Animator
    from faceanim.render.base import render_crop
    from faceanim.render.mobileportrait import MobilePortraitRenderer

    src = Animator.prepare(read_image(portrait("liveportrait_s42.jpg"))).source
    ref = Motion.from_state(src.state)
    target = transfer_motion(src.state, ref, ref, TransferConfig(lip_open=0.6))
    crops = []
    for bf16 in (False, True):
        r = MobilePortraitRenderer(bf16=bf16)
        crops.append(render_crop(src, r.render(r.prepare(src), target)).astype(np.float32))
    diff = np.abs(crops[0] - crops[1])
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) < 12  # only the convolutions run in bf16


def test_onnx_renderer_renders_like_pytorch(portrait):
    pytest.importorskip("onnxruntime")
    from faceanim.media import read_image
    from faceanim.motion.transfer import TransferConfig, transfer_motion
    from faceanim.motion.types import Motion
    from faceanim.pipeline.animator import Animator
    from faceanim.render.base import render_crop
    from faceanim.render.registry import create_renderer

    src = Animator.prepare(read_image(portrait("liveportrait_s42.jpg"))).source
    ref = Motion.from_state(src.state)
    target = transfer_motion(src.state, ref, ref, TransferConfig(lip_open=0.6))
    crops = []
    for name in ("mobileportrait", "mobileportrait-onnx"):  # the first may run its U-Nets in bf16
        r = create_renderer(name)
        crops.append(render_crop(src, r.render(r.prepare(src), target)).astype(np.float32))
    assert np.abs(crops[0] - crops[1]).mean() < 0.5
