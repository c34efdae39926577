import numpy as np

from faceanim.face.analyze import FaceState, SourceFace, describe_face
from faceanim.face.crop import CropConfig, compute_crop, warp_to_crop
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.masks import FaceMasks
from faceanim.face.model import load_face_model
from faceanim.render.base import RenderOutput, identity_flow
from faceanim.render.paste import paste_back, plan_paste


def _synthetic_face(centre, scale, angles) -> np.ndarray:
    can = load_face_model().canonical
    return scale * can @ rotation_from_euler(*angles).T + np.array([*centre, 0.0])


def _source(image: np.ndarray, landmarks: np.ndarray, size: int = 512) -> SourceFace:
    crop = compute_crop(landmarks, CropConfig(size=size))
    crop_img = warp_to_crop(image, crop)
    state: FaceState = describe_face(crop.to_crop(landmarks))
    z = np.zeros((size, size), np.float32)
    return SourceFace(image, crop, crop_img, state, FaceMasks(z, z, {}, z), np.zeros(4))


def test_crop_landmarks_map_both_ways_exactly():
    lms = _synthetic_face((1800, 1200), 300, (0, 0, 17))
    crop = compute_crop(lms)
    back = crop.to_image(crop.to_crop(lms))
    assert np.abs(back - lms).max() < 1e-9
    eyes = crop.to_crop(lms)[[33, 263]]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6  # roll removed: eyes level in the crop


def test_identity_paste_back_is_pixel_exact_on_4k_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    lms = _synthetic_face((1900, 1000), 260, (10, -5, 12))
    src = _source(image, lms)
    out = paste_back(src, RenderOutput(flow=identity_flow(src.crop.size)))
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image.astype(int)).max() == 0


def test_paste_back_leaves_pixels_outside_the_mask_unchanged():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (720, 960, 3), dtype=np.uint8)
    lms = _synthetic_face((480, 330), 70, (0, 0, -8))
    src = _source(image, lms, size=256)
    flow = identity_flow(256) + 7.0  # a large shift everywhere
    plan = plan_paste(src)
    out = paste_back(src, RenderOutput(flow=flow), plan)
    x0, y0, x1, y1 = plan.box
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = plan.alpha <= 0
    assert np.array_equal(out[outside], image[outside])
    assert np.abs(out.astype(int) - image.astype(int)).max() > 20  # the inside did change


def test_image_renderer_paste_back_round_trip_at_native_scale():
    rng = np.random.default_rng(2)
    image = cv_smooth(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8))
    lms = _synthetic_face((400, 300), 256 / 2.3 / 3.3, (0, 0, 0))
    src = _source(image, lms, size=256)
    out = paste_back(src, RenderOutput(crop=src.crop_image))
    assert np.abs(out.astype(int) - image.astype(int)).max() <= 3


def cv_smooth(img):
    import cv2

    return cv2.GaussianBlur(img, (0, 0), 3)
