"""Which renderer runs when the user names none."""

from faceanim.face.crop import CropConfig
from faceanim.pipeline.animator import AnimatorConfig
from faceanim.render.registry import default_renderer, renderer_usable


def test_default_is_the_trained_network_where_its_weights_are_and_analytic_elsewhere(tmp_path, monkeypatch):
    assert default_renderer() == "mobileportrait"  # this checkout ships the weights; the tests install torch
    assert AnimatorConfig().renderer == "mobileportrait"
    # the network renders 256² crops only: a 512² crop falls back instead of failing at prepare
    assert default_renderer(512) == "analytic"
    assert AnimatorConfig(crop=CropConfig(size=512)).renderer == "analytic"
    assert AnimatorConfig(renderer="tps").renderer == "tps"  # a named renderer is kept
    monkeypatch.setenv("FACEANIM_WEIGHTS", str(tmp_path))  # an install without the weights
    assert not renderer_usable("mobileportrait")
    assert default_renderer() == "analytic"
    assert AnimatorConfig().renderer == "analytic"
