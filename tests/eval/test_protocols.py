"""The evaluation protocols end to end on short real clips (quick settings, as CI runs them)."""

import json

import numpy as np
import pytest

from faceanim.cli import main
from faceanim.eval import metrics
from faceanim.eval.runner import run_protocol
from faceanim.eval.same_identity import EvalSettings
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import load_face_model
from faceanim.face.pose import estimate_head_pose

QUICK = EvalSettings(limit=6, every=3, sheet_frames=2)


def test_apd_of_the_canonical_face_rotated_by_known_angles():
    can = load_face_model().canonical
    truth = np.array([(20, 0, 0), (0, -15, 5), (-30, 10, 0)], float)
    estimated = np.array([estimate_head_pose(60 * can @ rotation_from_euler(*a).T + 200).angles for a in truth])
    assert metrics.apd(estimated, np.zeros_like(truth)) == pytest.approx(np.abs(truth).mean(), abs=0.05)
    assert metrics.apd(estimated, truth) < 0.05


def test_same_identity_renderers_side_by_side(clip, tmp_path):
    summary = run_protocol("same-id", ["identity", "analytic"], [clip("vexpress_AOC_gt.mp4")], tmp_path,
                           settings=QUICK, progress=False)
    agg = {name: r["aggregate"] for name, r in summary["renderers"].items()}
    # the trivial baseline never moves, so it cannot follow the speaker's head and mouth
    assert agg["analytic"]["akd"]["mean"] < agg["identity"]["akd"]["mean"]
    assert agg["analytic"]["apd"]["mean"] < agg["identity"]["apd"]["mean"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["renderers"]) == {"identity", "analytic"}
    assert "lpips" in saved["not_measured"]
    assert (tmp_path / "results.md").read_text().count("| analytic |") == 1
    assert (tmp_path / "contact_same-id_analytic.png").stat().st_size > 10_000


def test_identity_renderer_reconstructs_its_first_frame_perfectly(clip, tmp_path):
    settings = EvalSettings(limit=1, every=1, sheet_frames=1)
    summary = run_protocol("same-id", ["identity"], [clip("liveportrait_d0.mp4")], tmp_path, settings=settings,
                           progress=False)
    first = summary["renderers"]["identity"]["clips"][0]
    assert first["psnr"] > 40 and first["akd"] < 0.5


def test_cross_identity_follows_the_driver(portrait, clip, tmp_path):
    summary = run_protocol("cross-id", ["analytic"], [clip("liveportrait_d0.mp4")], tmp_path,
                           portraits=[portrait("liveportrait_s42.jpg")], settings=EvalSettings(limit=15, every=2),
                           progress=False)
    res = summary["renderers"]["analytic"]["clips"][0]
    assert res["frames"] == 15
    assert res["lip_corr"] > 0.8
    assert np.isnan(res["csim"])  # reported as not measured, never faked


def test_eval_command_writes_its_outputs(clip, tmp_path, capsys):
    code = main(["-q", "eval", "same-id", "--renderer", "identity", "--clips", str(clip("liveportrait_d0.mp4")),
                 "--limit", "3", "--out", str(tmp_path)])
    assert code == 0
    assert "| identity |" in capsys.readouterr().out
    assert (tmp_path / "results.json").exists()
