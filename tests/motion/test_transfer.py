import numpy as np
import pytest

from faceanim.face.analyze import describe_face
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import load_face_model
from faceanim.face.ratios import eye_open_ratios, lip_open_ratio
from faceanim.motion.retarget import set_eye_open, set_lip_open
from faceanim.motion.transfer import TransferConfig, transfer_motion
from faceanim.motion.types import Motion


def _face(angles=(0, 0, 0), scale=60.0, centre=(128.0, 140.0), expression=None):
    can = load_face_model().canonical if expression is None else expression
    lms = scale * can @ rotation_from_euler(*angles).T + np.array([*centre, 0.0])
    return describe_face(lms)


def test_driving_equal_to_reference_gives_the_source_back():
    source = _face((10, -5, 3))
    driver = Motion.from_state(_face((-20, 8, 0), scale=90, centre=(300, 200)))
    target = transfer_motion(source, driver, driver)
    assert np.abs(target.landmarks - source.landmarks).max() < 0.05  # pixels


def test_relative_rotation_and_translation_follow_the_driver_change():
    source = _face((10, 0, 0), scale=60)
    ref = Motion.from_state(_face((0, 0, 0), scale=120, centre=(300, 300)))
    drv = Motion.from_state(_face((0, 15, 0), scale=132, centre=(324, 300)))
    target = transfer_motion(source, drv, ref)
    from faceanim.face.geometry import euler_from_rotation

    # the source looked 10° to the side; the driver nodded 15°: the result looks to the side *and* nods
    yaw, pitch, _ = euler_from_rotation(target.rotation)
    assert yaw == pytest.approx(10.0, abs=1.0) and pitch == pytest.approx(15.0, abs=1.0)
    assert target.scale == pytest.approx(60 * 1.1, rel=1e-3)
    # the driver moved 24 px at scale 120 → 12 px at the source's scale 60
    assert target.translation[0] - source.pose.translation[0] == pytest.approx(12.0, abs=0.2)


def test_expression_delta_is_transferred_and_scaled():
    can = load_face_model().canonical
    source = _face()
    ref = Motion.from_state(_face(expression=can))
    drv = Motion.from_state(_face(expression=set_lip_open(can, 0.5)))
    full = transfer_motion(source, drv, ref, TransferConfig(retarget_lip=False))
    half = transfer_motion(source, drv, ref, TransferConfig(retarget_lip=False, expression_scale=0.5))
    off = transfer_motion(source, drv, ref, TransferConfig(expression=False))
    assert full.lip_open > half.lip_open > off.lip_open
    assert off.lip_open == pytest.approx(source.lip_open, abs=1e-3)


def test_eye_retargeting_normalises_by_the_driver_first_frame():
    can = load_face_model().canonical
    source = _face(expression=set_eye_open(can, 0.4, 0.4))  # big eyes
    ref = Motion.from_state(_face(expression=set_eye_open(can, 0.2, 0.2)))  # small-eyed driver
    blink = Motion.from_state(_face(expression=set_eye_open(can, 0.1, 0.1)))  # half closed
    target = transfer_motion(source, blink, ref)
    assert np.allclose(target.eye_open, 0.4 * 0.1 / 0.2, rtol=0.1)


@pytest.mark.parametrize("left,right", [(0.05, 0.3), (0.15, 0.15), (0.4, 0.35)])
def test_eye_overrides_hit_the_requested_ratio(left, right):
    source = _face()
    ref = Motion.from_state(source)
    target = transfer_motion(source, ref, ref, TransferConfig(left_eye_open=left, right_eye_open=right))
    measured = eye_open_ratios(target.landmarks)  # measured on the final (posed) landmarks
    assert measured == pytest.approx([left, right], rel=0.1)


@pytest.mark.parametrize("lip", [0.0, 0.2, 0.5])
def test_lip_override_hits_the_requested_ratio(lip):
    source = _face((15, 5, 0))
    ref = Motion.from_state(source)
    target = transfer_motion(source, ref, ref, TransferConfig(lip_open=lip))
    assert lip_open_ratio(target.landmarks) == pytest.approx(lip, abs=0.03 if lip == 0 else 0.1 * lip)


def test_gaze_override_moves_the_irises():
    source = _face()
    ref = Motion.from_state(source)
    target = transfer_motion(source, ref, ref, TransferConfig(gaze_direction=(0.15, 0.0)))
    from faceanim.face.ratios import gaze_offsets

    g = gaze_offsets(target.landmarks)
    assert g[0] == pytest.approx(0.15, abs=0.02) and g[2] == pytest.approx(0.15, abs=0.02)


def test_driver_translation_is_turned_into_a_tilted_sources_crop():
    """The source's crop is eye-level; a head tilted 20° in its picture moves along its own eye line."""
    from faceanim.motion.transfer import TransferConfig as Cfg

    source = _face((0, 0, 20), scale=60)
    ref = Motion.from_state(_face(scale=120, centre=(300, 300)))
    drv = Motion.from_state(_face(scale=120, centre=(324, 300)))  # 24 px to the right at scale 120
    for mode in ("relative", "absolute"):
        target = transfer_motion(source, drv, ref, Cfg(mode=mode))
        shift = target.translation[:2] - source.pose.translation[:2]
        a = np.deg2rad(20)
        assert shift == pytest.approx(12.0 * np.array([np.cos(a), np.sin(a)]), abs=0.2)
        # absolute takes the driver's upright head as seen from its eye line: the source keeps its tilt
        assert target.rotation == pytest.approx(source.pose.rotation, abs=1e-6)


def test_mouth_displacement_is_rescaled_to_the_sources_mouth():
    """A smile (corners out) on a driver carries over in proportion to a source whose mouth is 1.3× wider."""
    from faceanim.face.model import LOWER_LIP, MOUTH_CORNERS, UPPER_LIP

    can = load_face_model().canonical
    lips = sorted({*UPPER_LIP, *LOWER_LIP, *MOUTH_CORNERS})
    centre = can[list(MOUTH_CORNERS)].mean(0)
    wide = can.copy()
    wide[lips, 0] = centre[0] + 1.3 * (can[lips, 0] - centre[0])
    smile = can.copy()
    a, b = MOUTH_CORNERS
    half = 0.5 * (can[b, 0] - can[a, 0])
    smile[a] += [-0.1 * half, -0.05 * half, 0.0]
    smile[b] += [0.1 * half, -0.05 * half, 0.0]
    source = _face(expression=wide)
    ref, drv = Motion.from_state(_face()), Motion.from_state(_face(expression=smile))
    target = transfer_motion(source, drv, ref, TransferConfig(retarget_lip=False))
    moved = target.expression[b, 0] - source.expression[b, 0]
    assert moved == pytest.approx(1.3 * 0.1 * half, rel=0.05)


def test_the_older_lip_minimum_interface_still_works():
    can = load_face_model().canonical
    source = _face()
    ref = Motion.from_state(_face(expression=set_lip_open(can, 0.4)))  # the driver starts open-mouthed
    drv = Motion.from_state(_face(expression=set_lip_open(can, 0.2)))
    positional = transfer_motion(source, drv, ref, TransferConfig(), 0.0)
    keyword = transfer_motion(source, drv, ref, TransferConfig(), driver_min_lip=0.0)
    first_frame_only = transfer_motion(source, drv, ref, TransferConfig())
    assert positional.lip_open == pytest.approx(keyword.lip_open) == pytest.approx(0.2, abs=0.02)
    assert first_frame_only.lip_open < 0.02  # measured from the open first frame, the source stays shut


def test_driver_reference_is_robust_to_a_blinking_open_mouthed_first_frame():
    from faceanim.motion.transfer import driver_reference

    can = load_face_model().canonical
    first = Motion.from_state(_face(expression=set_lip_open(set_eye_open(can, 0.1, 0.1), 0.4)))
    rest = [Motion.from_state(_face(expression=set_lip_open(set_eye_open(can, 0.3, 0.3), lip)))
            for lip in (0.0, 0.2, 0.3, 0.1, 0.25, 0.0, 0.15, 0.3, 0.2, 0.1)]
    ref = driver_reference([first, *rest])
    assert ref.eye_open == pytest.approx([0.3, 0.3], abs=0.02)  # not the blink (0.1)
    assert ref.lip_closed == pytest.approx(0.0, abs=0.01)
    assert lip_open_ratio(ref.closed_expression) == pytest.approx(0.0, abs=0.02)
    assert ref.frames == 11


def test_a_half_closed_first_frame_is_not_the_eye_reference():
    """The driver glances down in its first frame (0.15); its eyes are usually open (0.3)."""
    from faceanim.motion.transfer import EYE_REFERENCE_SHARE, driver_reference

    can = load_face_model().canonical
    source = _face(expression=set_eye_open(can, 0.22, 0.22))  # smallish eyes: the plausible cap is 0.33
    frames = [Motion.from_state(_face(expression=set_eye_open(can, e, e))) for e in (0.15, *[0.3] * 9)]
    robust = transfer_motion(source, frames[1], frames[0], TransferConfig(), driver_reference(frames))
    naive = transfer_motion(source, frames[1], frames[0], TransferConfig())
    assert robust.eye_open == pytest.approx(0.22 / EYE_REFERENCE_SHARE, rel=0.05)
    assert (naive.eye_open > robust.eye_open + 0.02).all()  # 0.22 · 0.3 / 0.15 = 0.44, held at the cap 0.33
    # an ordinary first frame stays the reference: the source keeps its own eyes
    usual = transfer_motion(source, frames[1], frames[1], TransferConfig(), driver_reference(frames))
    assert usual.eye_open == pytest.approx(0.22, rel=0.05)


def test_head_offset_turns_the_target_head_by_the_requested_angles():
    can = load_face_model().canonical
    state = describe_face(200.0 + 40.0 * can)
    motion = Motion.from_state(state)
    base = transfer_motion(state, motion, motion, TransferConfig())
    turned = transfer_motion(state, motion, motion, TransferConfig(head_offset=(12.0, -5.0, 3.0)))
    got = describe_face(turned.landmarks).angles
    want = describe_face(base.landmarks).angles
    assert np.allclose(np.subtract(got, want), (12.0, -5.0, 3.0), atol=0.5)
    still = transfer_motion(state, motion, motion, TransferConfig(pose=False, head_offset=(0.0, 8.0, 0.0)))
    assert abs(describe_face(still.landmarks).angles[1] - want[1] - 8.0) < 0.5  # also when the driver's pose is off
