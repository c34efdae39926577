"""The evaluation protocols end to end on short real clips (quick settings, as CI runs them)."""

import json
import math
from itertools import chain

import numpy as np
import pytest

from faceanim.cli import main
from faceanim.eval import metrics, runner
from faceanim.eval.frames import EvalSettings, session_frames, valid_mask
from faceanim.eval.runner import run_protocol
from faceanim.eval.same_identity import ClipResult, evaluate_clip
from faceanim.face.crop import CropConfig, CropTransform
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import load_face_model
from faceanim.face.pose import estimate_head_pose
from faceanim.media.video import iter_video
from faceanim.pipeline.animator import Animator, AnimatorConfig

QUICK = EvalSettings(limit=6, every=3, sheet_frames=2, csim_frames=2)


def test_apd_of_the_canonical_face_rotated_by_known_angles():
    can = load_face_model().canonical
    truth = np.array([(20, 0, 0), (0, -15, 5), (-30, 10, 0)], float)
    estimated = np.array([estimate_head_pose(60 * can @ rotation_from_euler(*a).T + 200).angles for a in truth])
    assert metrics.apd(estimated, np.zeros_like(truth)) == pytest.approx(np.abs(truth).mean(), abs=0.05)
    assert metrics.apd(estimated, truth) < 0.05


def test_valid_mask_is_the_image_footprint_in_the_crop():
    # a 64-px crop whose left half and top 10 rows lie beyond a 100×100 image's edges
    crop = CropTransform(np.array([[1.0, 0, 32], [0, 1.0, 10]]), 64)
    mask = valid_mask((100, 100, 3), crop)
    assert not mask[:, :32].any() and not mask[:10].any() and mask[10:, 32:].all()


def test_same_identity_renderers_side_by_side(clip, tmp_path):
    summary = run_protocol("same-id", ["identity", "analytic"], [clip("vexpress_AOC_gt.mp4")], tmp_path,
                           settings=QUICK, progress=False)
    agg = {name: r["aggregate"] for name, r in summary["renderers"].items()}
    # the trivial baseline never moves, so it cannot follow the speaker's head and mouth
    assert agg["analytic"]["akd"]["mean"] < agg["identity"]["akd"]["mean"]
    assert agg["analytic"]["apd"]["mean"] < agg["identity"]["apd"]["mean"]
    for name in ("identity", "analytic"):  # the new scores are all there, and the same person stays that person
        for key in ("mouth_psnr", "mouth_ssim", "sharpness", "csim", "csim_distance"):
            assert np.isfinite(agg[name][key]["mean"]), (name, key)
        assert agg[name]["csim_distance"]["mean"] < 0.6
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["renderers"]) == {"identity", "analytic"}
    assert "lpips" in saved["not_measured"] and "csim" not in saved["not_measured"]
    md = (tmp_path / "results.md").read_text()
    assert md.count("| analytic |") == 2 and "| analytic | identity |" in md  # a table row and a win-count row
    assert "vexpress_AOC_gt.mp4" in md  # every input is listed
    assert (tmp_path / "contact_same-id_analytic.png").stat().st_size > 10_000


def test_frame_zero_is_not_scored(clip):
    """Frame 0 is the source itself: scoring it would add a PSNR of 100 to every clip."""
    path = clip("liveportrait_d0.mp4")
    frames = iter_video(path)
    first = next(frames)
    animator = Animator.prepare(first.image, AnimatorConfig(renderer="identity", crop=CropConfig(size=256)))
    settings = EvalSettings(limit=3, every=1)
    scored = [index for index, _ in session_frames(animator, chain([first], frames), settings,
                                                   lambda vf: vf.index, skip_first=True)]
    assert scored == [1, 2, 3]
    res = evaluate_clip(path, "identity", EvalSettings(limit=1, every=1, sheet_frames=0, csim_frames=1))
    assert res.frames == 1 and res.metrics["psnr"] < 60  # frame 1 against the source: not a perfect copy
    assert res.metrics["valid_fraction"] < 1.0  # this clip's crop runs beyond the frame: padding is left out


def test_cross_identity_follows_the_driver(portrait, clip, tmp_path):
    summary = run_protocol("cross-id", ["analytic"], [clip("liveportrait_d0.mp4")], tmp_path,
                           portraits=[portrait("liveportrait_s42.jpg")],
                           settings=EvalSettings(limit=15, every=2, csim_frames=3), progress=False)
    res = summary["renderers"]["analytic"]["clips"][0]
    assert res["frames"] == 15
    assert res["lip_corr"] > 0.8
    assert res["csim_distance"] < 0.6  # the output is still the portrait's person (dlib threshold)
    md = (tmp_path / "results.md").read_text()
    assert res["clip"] in summary["inputs"] and f"weakest lip_corr: {res['clip']}" in md


def test_missing_eval_extra_is_said_not_faked(monkeypatch, clip, tmp_path):
    monkeypatch.setattr("faceanim.eval.identity.model_files", lambda: None)
    summary = run_protocol("same-id", ["identity"], [clip("liveportrait_d0.mp4")], tmp_path,
                           settings=EvalSettings(limit=2, sheet_frames=0), progress=False)
    assert summary["warnings"] and "faceanim[eval]" in summary["warnings"][0]
    assert "faceanim[eval]" in summary["not_measured"]["csim"]
    assert math.isnan(summary["renderers"]["identity"]["clips"][0]["csim"])
    assert "not measured" in summary["table"]


def test_contact_sheet_keeps_only_what_it_shows(monkeypatch, tmp_path):
    """Memory must not grow with the number of pairs: jobs past the sheet's are asked for no sheet rows."""
    asked = []

    def fake_pair(portrait, clip, renderer, settings, measurer, progress):
        asked.append(settings.sheet_frames)
        rows = [[np.zeros((8, 8, 3), np.uint8)] * 3 for _ in range(settings.sheet_frames)]
        return ClipResult(f"{portrait.name}×{clip.name}", renderer, {"lip_corr": 0.5}, 1, 0, rows)

    monkeypatch.setattr(runner, "evaluate_pair", fake_pair)
    portraits = [tmp_path / f"p{i}.png" for i in range(5)]
    clips = [tmp_path / f"c{i}.mp4" for i in range(4)]
    summary = run_protocol("cross-id", ["analytic"], clips, tmp_path / "out", portraits,
                           settings=EvalSettings(sheet_frames=4), progress=False)
    assert len(asked) == 20 and asked[:6] == [2] * 6 and set(asked[6:]) == {0}
    assert len(summary["inputs"]) == 20
    import cv2

    sheet = cv2.imread(str(tmp_path / "out" / "contact_cross-id_analytic.png"))
    assert sheet.shape[0] == 24 + 6 * 2 * 160


def test_win_counts_count_clips_not_means():
    summary = {"protocol": "same-id", "renderers": {
        "identity": {"clips": [{"clip": "a", "psnr": 30.0, "akd": 5.0}, {"clip": "b", "psnr": 20.0, "akd": 5.0}]},
        "analytic": {"clips": [{"clip": "a", "psnr": 29.0, "akd": 1.0}, {"clip": "b", "psnr": 25.0, "akd": 5.0}]},
    }}
    (row,) = runner.win_counts(summary)
    assert row["renderer"] == "analytic" and row["vs"] == "identity"
    assert row["psnr"] == "1/2" and row["akd"] == "1/2"  # a tie is no win


def test_default_clips_include_every_video_kind(tmp_path):
    for name in ("talking/a.mpg", "talking/b.mp4", "driving/c.mov", "driving/notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in runner.default_clips(tmp_path)] == ["a.mpg", "b.mp4", "c.mov"]


def test_eval_command_writes_its_outputs(clip, tmp_path, capsys):
    path = str(clip("liveportrait_d0.mp4"))
    code = main(["-q", "eval", "same-id", "--renderer", "identity", "--clips", path, "--limit", "3",
                 "--csim-frames", "1", "--out", str(tmp_path)])
    assert code == 0
    assert "| identity |" in capsys.readouterr().out
    md = (tmp_path / "results.md").read_text()
    assert f"faceanim eval same-id --renderer identity --clips {path} --limit 3" in md
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_eval_bad_clip_is_one_line(tmp_path, capsys):
    code = main(["eval", "same-id", "--clips", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "nope.mp4" in err and "Traceback" not in err
    assert not (tmp_path / "results.json").exists()


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_clip_stride_is_a_reproducible_subset(shared_data, tmp_path):
    code = main(["-q", "eval", "same-id", "--renderer", "identity", "--data", str(shared_data), "--clip-stride",
                 "1000", "--limit", "2", "--csim-frames", "1", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["inputs"] == [str(runner.default_clips(shared_data)[0])]
    assert f"--data {shared_data} --clip-stride 1000 --limit 2" in summary["command"]
