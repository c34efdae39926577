"""Compositing: premultiplied overlays, the moving person over the still background, mouth and hair edges."""

import cv2
import numpy as np
import pytest
from skimage import data

from faceanim.face.analyze import SourceFace, describe_face
from faceanim.face.crop import CropConfig, compute_crop, warp_to_crop
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.masks import FaceMasks
from faceanim.face.model import load_face_model
from faceanim.media import read_image
from faceanim.motion.transfer import TransferConfig, transfer_motion
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator
from faceanim.render.analytic import AnalyticConfig, AnalyticRenderer
from faceanim.render.base import Overlay, RenderOutput, composite_overlay, identity_flow, render_crop
from faceanim.render.mesh_warp import mesh_flow
from faceanim.render.paste import paste_back, plan_paste

LUM = np.array([0.299, 0.587, 0.114], np.float32)


def _flat(rgb, alpha: float, box, size: int = 64) -> Overlay:
    x0, y0, x1, y1 = box
    shape = (y1 - y0, x1 - x0)
    return Overlay.from_straight(np.broadcast_to(np.float32(rgb), (*shape, 3)), np.full(shape, alpha), box)


def test_black_half_over_transparent_white_on_grey_gives_64():
    grey = np.full((64, 64, 3), 128, np.uint8)
    layered = _flat((0, 0, 0), 0.5, (8, 8, 40, 40)).over(_flat((255, 255, 255), 0.0, (8, 8, 40, 40)))
    out = composite_overlay(grey, layered)
    assert np.abs(out[20, 20].astype(int) - 64).max() <= 1
    assert np.array_equal(out[:8], grey[:8])  # outside the boxes nothing changes


def test_overlay_over_overlay_over_image_equals_blending_in_turn():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    layers = []
    for box in ((5, 10, 40, 50), (20, 2, 60, 30)):  # overlapping, different boxes
        h, w = box[3] - box[1], box[2] - box[0]
        layers.append(Overlay.from_straight(rng.uniform(0, 255, (h, w, 3)), rng.uniform(0, 1, (h, w)), box))
    below, top = layers
    at_once = composite_overlay(image, top.over(below))
    in_turn = composite_overlay(composite_overlay(image, below), top)
    assert np.abs(at_once.astype(int) - in_turn.astype(int)).max() <= 1  # only the in-between rounding differs
    assert np.abs(at_once.astype(int) - image.astype(int)).max() > 50  # the layers did show


def _synthetic_source(image: np.ndarray, size: int = 128) -> SourceFace:
    lms = 60 * load_face_model().canonical @ rotation_from_euler(0, 0, 0).T + np.array([160.0, 120.0, 0.0])
    crop = compute_crop(lms, CropConfig(size=size))
    z = np.zeros((size, size), np.float32)
    return SourceFace(image, crop, warp_to_crop(image, crop), describe_face(crop.to_crop(lms)), FaceMasks(z, z, {}, z),
                      np.zeros(4))


def test_paste_back_composites_premultiplied_overlays_at_full_resolution():
    grey = np.full((240, 320, 3), 128, np.uint8)
    src = _synthetic_source(grey)
    overlay = _flat((0, 0, 0), 0.5, (40, 40, 90, 90)).over(_flat((255, 255, 255), 0.0, (30, 30, 100, 100)))
    out = paste_back(src, RenderOutput(flow=identity_flow(128), overlay=overlay))
    centre = np.round(src.crop.to_image(np.array([[65.0, 65.0]]))[0]).astype(int)
    assert np.abs(out[centre[1], centre[0]].astype(int) - 64).max() <= 1
    plan = plan_paste(src)
    x0, y0, x1, y1 = plan.box
    outside = np.ones(grey.shape[:2], bool)
    outside[y0:y1, x0:x1] = plan.alpha <= 0
    assert np.array_equal(out[outside], grey[outside])  # still pixels stay exact


def test_paste_back_with_a_still_background_keeps_still_pixels_exact():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    src = _synthetic_source(image)
    weight = np.zeros((128, 128), np.float32)
    weight[56:72, 56:72] = 1.0  # only this square (about 55 image pixels wide) moves
    out = paste_back(src, RenderOutput(flow=identity_flow(128) + 5.0, flow_weight=weight))
    cx, cy = np.round(src.crop.to_image(np.array([[64.0, 64.0]]))[0]).astype(int)
    assert np.array_equal(out[: cy - 40], image[: cy - 40])  # above the square: the source, exactly
    assert np.array_equal(out[:, cx + 40 :], image[:, cx + 40 :])
    moved = np.abs(out[cy - 5 : cy + 5, cx - 5 : cx + 5].astype(int) - image[cy - 5 : cy + 5, cx - 5 : cx + 5])
    assert moved.max() > 20


def _moved(source: SourceFace, yaw: float, shift: tuple[float, float], lip: float | None = None):
    ref = Motion.from_state(source.state)
    drv = Motion(**{**ref.__dict__, "rotation": rotation_from_euler(yaw, 0, 0) @ ref.rotation,
                    "translation": ref.translation + np.array([*shift, 0.0])})  # crop pixels
    return transfer_motion(source.state, drv, ref, TransferConfig(lip_open=lip))


def test_open_mouth_edge_shows_only_the_mouth_and_the_face_under_it():
    # a head turn makes an uncovered-background layer; the mouth's soft edge must not pick up its (wall) colour
    src = Animator.prepare(data.astronaut()).source
    target = _moved(src, 12.0, (0.0, 0.0), lip=0.6)
    renderer = AnalyticRenderer()
    prepared = renderer.prepare(src)
    out = renderer.render(prepared, target)
    assert out.background is not None and out.overlay is not None
    crop = render_crop(src, out).astype(np.float32)
    no_mouth = AnalyticRenderer(AnalyticConfig(mouth_interior=False))
    under = render_crop(src, no_mouth.render(no_mouth.prepare(src), target)).astype(np.float32)
    x0, y0, x1, y1 = out.overlay.box
    a = out.overlay.alpha
    rim = (a >= 0.05) & (a <= 0.5)
    assert rim.sum() > 20
    mouth = out.overlay.rgba[..., :3] / np.maximum(a[..., None], 1e-6)
    expected = a[..., None] * mouth + (1 - a[..., None]) * under[y0:y1, x0:x1]
    assert np.abs(crop[y0:y1, x0:x1][rim] - expected[rim]).mean() < 1.0


@pytest.fixture(scope="module")
def dark_hair_on_grey(portrait):
    """A photo with dark hair against a plain light background (256×256: fast)."""
    return Animator.prepare(read_image(portrait("dreamtalk_face3.png"))).source


def test_moving_hair_edge_gets_no_background_rim(dark_hair_on_grey):
    """Where the moved silhouette's soft edge lies, the output is the moved person's own pixels, not the background
    between (blending the flow towards the identity sampled it there: a light, ragged rim round the hair)."""
    src = dark_hair_on_grey
    renderer = AnalyticRenderer()
    prepared = renderer.prepare(src)
    rims = []
    for yaw, shift in ((15.0, (12.0, 0.0)), (-15.0, (-12.0, 4.0))):
        target = _moved(src, yaw, shift)
        pts, depth = renderer.target_points(prepared, target)
        flow = mesh_flow(pts, prepared.source_points, prepared.triangles, depth, prepared.size, prepared.grid)
        person = cv2.remap(src.crop_image, flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        seg = cv2.remap(src.masks.foreground.astype(np.float32), flow, None, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        edge = (seg >= 0.3) & (seg <= 0.8)
        out = render_crop(src, renderer.render(prepared, target))
        rims.append(np.abs((out.astype(np.float32) - person) @ LUM)[edge].mean())
    assert max(rims) < 6.0  # was 15-18 grey levels with coordinate blending


def test_uncovered_background_holds_no_black_from_beyond_the_image_edge(portrait):
    # a small photo whose crop reaches past the top: the inpainting must not drag the crop's black padding in
    src = Animator.prepare(read_image(portrait("sadtalker_sad1.png"))).source
    prepared = AnalyticRenderer().prepare(src)
    h, w = src.image.shape[:2]
    inside = np.zeros((src.crop.size,) * 2, np.uint8)
    corners = src.crop.to_crop(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float))
    cv2.fillConvexPoly(inside, np.round(corners).astype(np.int32), 1)
    hole = (prepared.covered + prepared.margin > 0.5) & (inside > 0)
    hole[src.crop.size // 2 :] = False  # above the shoulders: white wall only
    assert hole.sum() > 500
    assert np.percentile(prepared.background[hole] @ LUM, 1) > 150  # white wall, not black smudges


@pytest.mark.parametrize("presharpen, lowest, highest", [(0.5, 0.8, 1.2), (0.0, 0.0, 0.7)])
def test_synthesised_crop_pixels_keep_their_detail_through_paste_back_and_a_recrop(presharpen, lowest, highest):
    """A crop enlarged into the frame and cropped again (as a viewer or the evaluation does) stays as sharp
    as it was: bicubic enlargement with the unsharp pre-compensation; without it, it visibly softens."""
    from faceanim.eval.metrics import sharpness_ratio
    from faceanim.render.paste import PasteConfig

    image = cv2.resize(data.astronaut(), (640, 640), interpolation=cv2.INTER_CUBIC)
    lms = 75 * load_face_model().canonical + np.array([320.0, 300.0, 0.0])
    crop = compute_crop(lms, CropConfig(size=256))
    assert 0.3 < crop.scale < 0.7  # paste-back enlarges the crop about twofold
    crop_image = warp_to_crop(image, crop)
    z = np.zeros((256, 256), np.float32)
    src = SourceFace(image, crop, crop_image, describe_face(crop.to_crop(lms)), FaceMasks(z, z, {}, z), np.zeros(4))
    inner = (slice(64, 192), slice(64, 192))
    alpha = np.zeros((256, 256), np.float32)
    alpha[inner] = 1.0
    grey = np.full_like(image, 128)  # the layer alone, over flat grey, so only its own detail is measured
    layer = Overlay.from_straight(crop_image, alpha, (0, 0, 256, 256))
    out = paste_back(src, RenderOutput(flow=identity_flow(256), overlay=layer),
                     plan_paste(src, PasteConfig(presharpen=presharpen)), base=grey)
    # compare on the same base: the flow layer resamples ``grey`` too
    recrop = warp_to_crop(out, crop)[inner]
    ratio = sharpness_ratio(recrop[8:-8, 8:-8], crop_image[inner][8:-8, 8:-8])
    assert lowest <= ratio <= highest
