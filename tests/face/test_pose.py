import numpy as np
import pytest

from faceanim.face.geometry import euler_from_rotation, fit_similarity_robust, rotation_from_euler
from faceanim.face.model import load_face_model
from faceanim.face.pose import canonical_expression, estimate_head_pose


@pytest.mark.parametrize(
    "angles",
    [(30, 0, 0), (-30, 0, 0), (0, 30, 0), (0, -30, 0), (25, -20, 10), (-15, 28, -12), (0, 0, 0)],
)
def test_pose_recovered_from_rotated_canonical_face(angles):
    model = load_face_model()
    rot = rotation_from_euler(*angles)
    rng = np.random.default_rng(0)
    pts = 90.0 * model.canonical @ rot.T + np.array([300.0, 250.0, 0.0])
    pts += rng.normal(0, 0.3, pts.shape)  # sub-pixel landmark noise
    pose = estimate_head_pose(pts)
    assert np.max(np.abs(np.array(pose.angles) - angles)) < 1.0
    assert pose.scale == pytest.approx(90.0, rel=0.01)


def test_euler_round_trip():
    for angles in [(10, 20, 30), (-40, 5, -60), (0, -45, 170)]:
        assert np.allclose(euler_from_rotation(rotation_from_euler(*angles)), angles, atol=1e-9)


def test_pose_ignores_an_open_mouth():
    model = load_face_model()
    can = model.canonical.copy()
    can[[14, 17, 87, 317, 152, 175, 199], 1] += 0.4  # jaw drops a lot
    rot = rotation_from_euler(20, -10, 5)
    pose = estimate_head_pose(70 * can @ rot.T + [200, 200, 0])
    assert np.max(np.abs(np.array(pose.angles) - [20, -10, 5])) < 1.0


def test_expression_is_pose_free():
    model = load_face_model()
    can = model.canonical
    a = 80 * can @ rotation_from_euler(25, 10, -5).T + [100, 50, 3]
    b = 40 * can @ rotation_from_euler(-20, -5, 15).T + [400, 300, -7]
    ea = canonical_expression(a, estimate_head_pose(a))
    eb = canonical_expression(b, estimate_head_pose(b))
    assert np.abs(ea - eb).max() < 1e-6


def test_robust_similarity_rejects_outliers():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(60, 3))
    rot = rotation_from_euler(12, -7, 33)
    dst = 2.5 * src @ rot.T + [1, 2, 3]
    dst[:6] += rng.normal(0, 5, (6, 3))
    s, r, _ = fit_similarity_robust(src, dst)
    assert s == pytest.approx(2.5, rel=0.02)
    assert np.allclose(euler_from_rotation(r), (12, -7, 33), atol=0.5)
