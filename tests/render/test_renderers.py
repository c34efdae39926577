"""Renderers on a real public-domain portrait (skimage's astronaut): what a user would see."""

import numpy as np
import pytest
from skimage import data

from faceanim.face.geometry import rotation_from_euler
from faceanim.face.ratios import lip_open_ratio
from faceanim.motion.transfer import TransferConfig, transfer_motion
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.render.base import render_crop
from faceanim.render.registry import available_renderers, create_renderer


@pytest.fixture(scope="module")
def astronaut_animators():
    img = data.astronaut()
    analytic = Animator.prepare(img, AnimatorConfig(renderer="analytic"))
    return img, analytic


def _turned(animator: Animator, yaw: float = 20.0, lip: float | None = None):
    st = animator.source.state
    ref = Motion.from_state(st)
    drv = Motion(**{**ref.__dict__, "rotation": rotation_from_euler(yaw, 0, 0) @ ref.rotation})
    return transfer_motion(st, drv, ref, TransferConfig(lip_open=lip))


def test_registry_lists_the_builtin_renderers():
    assert {"analytic", "tps", "identity"} <= set(available_renderers())
    with pytest.raises(ValueError, match="unknown renderer"):
        create_renderer("nope")


def test_neutral_motion_reproduces_the_source(astronaut_animators):
    img, anim = astronaut_animators
    ref = Motion.from_state(anim.source.state)
    out = anim.animate(ref, ref).image
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 1.0


def test_head_turn_moves_the_face_but_not_the_crop_border(astronaut_animators):
    _, anim = astronaut_animators
    src = anim.faces[0]
    out = anim.renderer.render(src.renderer_state, _turned(anim, 20))
    crop = render_crop(src.source, out)
    diff = np.abs(crop.astype(int) - src.source.crop_image.astype(int)).sum(-1)
    face = src.source.masks.face > 0.5
    assert diff[face].mean() > 10  # the face moved
    assert diff[0].mean() < 1 and diff[-1].mean() < 1  # top and bottom border (background, shoulders) stay


def test_tps_baseline_bends_the_background_the_analytic_renderer_keeps(astronaut_animators):
    _, anim = astronaut_animators
    src = anim.faces[0]
    tps = create_renderer("tps")
    target = _turned(anim, 25)
    moved = {}
    for name, r, st in (("analytic", anim.renderer, src.renderer_state), ("tps", tps, tps.prepare(src.source))):
        crop = render_crop(src.source, r.render(st, target))
        fg = src.source.masks.foreground < 0.2  # background
        moved[name] = np.abs(crop.astype(int) - src.source.crop_image.astype(int)).sum(-1)[fg].mean()
    assert moved["analytic"] < moved["tps"]


def test_open_mouth_gets_a_dark_interior(astronaut_animators):
    _, anim = astronaut_animators
    src = anim.faces[0]
    target = _turned(anim, 0, lip=0.6)
    assert lip_open_ratio(target.expression) == pytest.approx(0.6, rel=0.1)
    out = anim.renderer.render(src.renderer_state, target)
    assert out.overlay is not None
    crop = render_crop(src.source, out)
    inner = target.landmarks[[13, 14], :2].mean(0).round().astype(int)
    lum = crop[inner[1] - 1 : inner[1] + 2, inner[0] - 1 : inner[0] + 2].mean()
    assert lum < 0.6 * src.source.crop_image[src.source.masks.face > 0.5].mean()
