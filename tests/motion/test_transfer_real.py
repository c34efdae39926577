"""Motion transfer on real faces: a real clip's own first frame as the source, real portraits as sources."""

import numpy as np
import pytest

from faceanim.face.analyze import FaceState, describe_face
from faceanim.face.crop import CropConfig, compute_crop
from faceanim.face.detect import FaceLandmarker
from faceanim.face.model import load_face_model
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image
from faceanim.media.video import iter_video
from faceanim.motion.retarget import iris_ratios, max_eye_open, set_eye_open
from faceanim.motion.transfer import TransferConfig, driver_reference, transfer_motion
from faceanim.motion.types import Motion


def _source_state(image: np.ndarray) -> tuple[FaceState, np.ndarray]:
    """The source face as ``prepare_source_face`` describes it (eye-level crop), and the crop's affine."""
    with FaceLandmarker(max_faces=1) as lm:
        det = lm.detect(image)[0]
    crop = compute_crop(det.landmarks, CropConfig(size=256))
    return describe_face(crop.to_crop(det.landmarks)), crop


def _track(path, frames: int, every: int) -> tuple[list, list[Motion]]:
    images, motions = [], []
    with FaceTracker(TrackerConfig(smoothing=0.0)) as tracker:
        for vf in iter_video(path, every=every):
            if len(motions) == frames:
                break
            tf = tracker.update(vf.image, vf.index, vf.time)
            if tf.state is not None and tf.has_face:
                images.append(vf.image)
                motions.append(Motion.from_state(tf.state))
    return images, motions


@pytest.fixture(scope="module")
def tilted_clip(clip):
    """A talking clip whose speaker holds her head ~6.6° tilted: the eye-level crop turns its axes."""
    images, motions = _track(clip("sadtalker_WDA_KatieHill_000.mp4"), frames=12, every=4)
    source, crop = _source_state(images[0])
    return source, crop, motions


@pytest.mark.parametrize("with_reference", [False, True])
def test_absolute_equals_relative_on_same_identity(tilted_clip, with_reference):
    source, _, motions = tilted_clip
    ref = motions[0]
    driver = driver_reference(motions) if with_reference else None
    for m in motions:
        rel = transfer_motion(source, m, ref, TransferConfig(mode="relative"), driver)
        ab = transfer_motion(source, m, ref, TransferConfig(mode="absolute"), driver)
        assert np.abs(rel.landmarks - ab.landmarks).max() < 0.05  # pixels of the 256 crop


def test_same_identity_reconstructs_the_drivers_landmarks_in_a_tilted_crop(tilted_clip):
    """The driver's head motion lands where the driver's own landmarks are, seen through the source's crop."""
    source, crop, motions = tilted_clip
    moved = max(float(np.linalg.norm(m.translation[:2] - motions[0].translation[:2])) for m in motions)
    assert moved * crop.scale > 2.0  # the head really moves (crop pixels), so the test can fail
    for m in motions:
        truth = crop.to_crop(m.scale * m.expression @ m.rotation.T + m.translation)
        for mode in ("relative", "absolute"):
            target = transfer_motion(source, m, motions[0], TransferConfig(mode=mode))
            assert np.linalg.norm(target.landmarks[:, :2] - truth[:, :2], axis=1).mean() < 0.1


def test_an_open_mouthed_driver_opens_and_closes_a_closed_painted_mouth(clip, portrait):
    """AOC's first frame is mid-word (lip ratio ~0.47); the painted source's lips are shut (~0)."""
    _, motions = _track(clip("vexpress_AOC_gt.mp4"), frames=30, every=2)
    source, _ = _source_state(read_image(portrait("liveportrait_s0.jpg")))
    assert motions[0].lip_open > 0.3 and source.lip_open < 0.05
    reference = driver_reference(motions[:25])  # the driver's first ~2 s
    targets = [transfer_motion(source, m, motions[0], TransferConfig(), reference) for m in motions]
    lip = np.array([t.lip_open for t in targets])
    drv = np.array([m.lip_open for m in motions])
    assert np.corrcoef(lip, drv)[0, 1] > 0.95
    assert lip[drv.argmin()] < 0.03  # the driver's most closed frame closes the source's lips
    assert lip[drv.argmax()] > 0.3  # its widest frame opens them about as wide
    # the mouth shape follows too (not only the ratio): the mouth corners move with the driver's
    corners = [61, 291]
    width = np.array([np.linalg.norm(np.subtract(*t.expression[corners, :2])) for t in targets])
    drv_width = np.array([np.linalg.norm(np.subtract(*m.expression[corners, :2])) for m in motions])
    assert np.corrcoef(width, drv_width)[0, 1] > 0.9


def test_eyes_stay_within_the_sources_plausible_range_when_the_driver_starts_half_closed(portrait):
    """Driver's first frame: eyes half closed (0.12); later frames open (0.30) and wide (0.40)."""
    source, _ = _source_state(read_image(portrait("liveportrait_s42.jpg")))
    can = load_face_model().canonical
    drv = [Motion.from_state(describe_face(60.0 * set_eye_open(can, e, e) + [128.0, 128.0, 0.0]))
           for e in (0.12, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.12, 0.4)]
    limit = max_eye_open(source.expression, source.eye_open)
    assert (limit <= iris_ratios(source.expression)).all()  # the bound itself keeps lids on the iris
    for reference in (None, driver_reference(drv)):
        for m in drv:
            target = transfer_motion(source, m, drv[0], TransferConfig(), reference)
            assert (target.eye_open <= limit + 0.01).all()
            assert (target.eye_open <= iris_ratios(target.expression) + 0.01).all()  # no white all around
