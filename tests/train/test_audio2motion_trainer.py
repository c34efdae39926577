"""The audio-to-motion trainer on a small synthetic cache: runs, logs, checkpoints, resumes, exports; the dev
split, recovering out-of-sync clips by shifting their audio, dev-based model selection."""

from __future__ import annotations

import csv
import json
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from faceanim.audio.weights import load_audio2motion
from faceanim.errors import FaceAnimError
from faceanim.face.model import load_face_model
from faceanim.train.audio2motion_data import load_split, sample_batch, shift_audio, speed_window
from faceanim.train.audio2motion_trainer import export_selected, load_config, train
from faceanim.train.splits import VALIDATION_IDENTITIES, is_validation
from faceanim.train.talking_data import ClipRecord

OUT_OF_SYNC = "audio and video out of sync by +3 frames"


def _fake_cache(root: Path, lag: int = 0) -> Path:
    """Clips whose mouth opens with the loudness of their (synthetic) log-mels; with ``lag`` a fifth training
    clip whose mouth lags its audio by ``lag`` frames, marked out of sync."""
    rng = np.random.default_rng(0)
    can = load_face_model().canonical
    (root / "clips").mkdir(parents=True)
    records = []
    splits = ["train", "train", "train", "val"] + (["train"] if lag else [])
    for k, split in enumerate(splits):
        n = 60 + 10 * k
        loud = (np.sin(np.arange(n) / 3.0 + k) > 0).astype(np.float32)
        heard = np.roll(loud, -lag) if k == 4 else loud  # the audio runs ``lag`` frames ahead of the mouth
        expr = np.repeat(can[None], n, 0).astype(np.float32)
        expr[:, 14, 1] += 0.1 * loud  # lower lip
        mel = np.repeat(np.log(1e-3 + heard), 4)[:, None] + 0.1 * rng.standard_normal((4 * n, 80))
        arrays = {
            "valid": np.ones(n, bool), "expression": expr, "rotation": np.repeat(np.eye(3)[None], n, 0),
            "angles": rng.standard_normal((n, 3)).astype(np.float32), "translation": np.zeros((n, 3), np.float32),
            "scale": np.full(n, 100.0, np.float32), "eye_open": np.full((n, 2), 0.3, np.float32),
            "lip_open": 0.1 * loud, "gaze": np.zeros((n, 4), np.float32), "source_fps": np.float64(25.0),
            "mel": mel.astype(np.float32), "envelope": loud,
        }
        name = f"clip{k}"
        np.savez(root / "clips" / f"{name}.npz", **arrays)
        why = OUT_OF_SYNC if k == 4 else ""
        records.append(asdict(ClipRecord(name, name + ".mp4", f"id{k}", n, 25.0, 1.0, 0, 0.9, split, why)))
    (root / "index.json").write_text(json.dumps({"clips": records}))
    return root


def _config(tmp: Path, steps: int, **extra) -> Path:
    cfg = {**extra, "task": "audio2motion", "cache": str(tmp / "cache"), "output": str(tmp / "run"),
           "weights": str(tmp / "w.safetensors"), "steps": steps, "batch": 2, "window": 40, "log_every": 2,
           "eval_every": 2, "ckpt_every": 2,
           "model": {"d_model": 32, "n_heads": 2, "ff_dim": 64, "lip_layers": 1, "vae_layers": 1, "latent_dim": 4}}
    p = tmp / "cfg.json"
    p.write_text(json.dumps(cfg))
    return p


def test_train_resume_export(tmp_path: Path) -> None:
    _fake_cache(tmp_path / "cache")
    weights = train(_config(tmp_path, 4), resume=False, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert [r["step"] for r in rows] == ["2", "4"] and rows[-1]["val_lmd"]
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    weights = train(_config(tmp_path, 6), resume=True, progress=False)  # continues from step 4
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert [r["step"] for r in rows] == ["2", "4", "6"]
    model = load_audio2motion(weights)
    assert model.config.d_model == 32
    assert float(model.feat_std.min()) > 0  # feature statistics travel with the weights


def test_config_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"task": "audio2motion", "stepz": 3}))
    with pytest.raises(FaceAnimError, match="stepz"):
        load_config(p)
    p.write_text(json.dumps({"task": "renderer"}))
    with pytest.raises(FaceAnimError, match="task"):
        load_config(p)
    p.write_text("{not json")
    with pytest.raises(FaceAnimError):
        load_config(p)
    with pytest.raises(FaceAnimError, match="resume"):
        _fake_cache(tmp_path / "cache")
        train(_config(tmp_path, 2), resume=True, progress=False)


def test_shipped_config_is_valid() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "audio2motion.json")
    assert cfg.max_minutes <= 50 and cfg.model.d_model == 128
    assert cfg.dev_identities and not set(cfg.dev_identities) & set(VALIDATION_IDENTITIES)
    assert all(abs(k) <= 5 for k in cfg.sync_offsets.values())
    assert not any(is_validation(name) for name in cfg.sync_offsets)  # validation clips are never recovered


def test_shift_audio_pairs_video_t_with_audio_t_minus_offset() -> None:
    n = 20
    arrays = {"lip_open": np.arange(n, dtype=np.float32), "expression": np.zeros((n, 478, 3), np.float32),
              "mel": np.repeat(np.arange(n, dtype=np.float32), 4)[:, None] * np.ones((1, 80), np.float32),
              "envelope": np.arange(n, dtype=np.float32)}
    for k in (3, -2):
        out, _ = shift_audio(arrays, k)
        m = n - abs(k)
        assert len(out["lip_open"]) == m and out["mel"].shape == (4 * m, 80) and len(out["envelope"]) == m
        video_t, audio_t = out["lip_open"], out["mel"][::4, 0]
        assert np.array_equal(video_t - audio_t, np.full(m, k))  # frame t of video meets audio t - k
    same, _ = shift_audio(arrays, 0)
    assert same is arrays
    with pytest.raises(ValueError):
        shift_audio(arrays, n)


def test_speed_perturbation_resamples_audio_and_targets_together(tmp_path: Path) -> None:
    clip = load_split(_fake_cache(tmp_path / "cache"), "train", mirror=False)[2]  # 80 frames
    fast = speed_window(clip, 0, 60, 1.2)
    assert fast["feats"].shape == (50, 320) and fast["mouth"].shape == (50, 55, 3) and fast["pose"].shape == (50, 6)
    # the mouth still opens with the loudness of the same (resampled) frame
    loud = fast["feats"].reshape(50, 4, 80).mean((1, 2)) > np.log(1e-3) / 2
    assert np.corrcoef(loud, fast["mouth"][:, :, 1].std(1) > 1e-4)[0, 1] > 0.8
    slow = sample_batch([clip], 4, 40, np.random.default_rng(0), speed=0.15)
    assert slow.feats.shape == (4, 40, 320) and slow.mask.sum(1).min() >= 34  # ≥ 40 / 1.15 frames are real


def test_dev_split_and_recovered_clips(tmp_path: Path) -> None:
    cache = _fake_cache(tmp_path / "cache", lag=3)
    train_names = {c.name for c in load_split(cache, "train", mirror=False)}
    assert train_names == {"clip0", "clip1", "clip2", "clip4"}  # the out-of-sync clip with its mouth masked
    assert not next(c for c in load_split(cache, "train", mirror=False) if c.name == "clip4").synced
    held = load_split(cache, "train", mirror=False, dev=("id1",))
    assert {c.name for c in held} == {"clip0", "clip2", "clip4"}
    assert [c.name for c in load_split(cache, "dev", mirror=False, dev=("id1",))] == ["clip1"]
    rec = next(c for c in load_split(cache, "train", mirror=False, offsets={"clip4": 3}) if c.name == "clip4")
    assert rec.synced and rec.frames == 100 - 3
    # shifted back into sync: the mouth now opens with the audio of the same frame
    mel_loud = rec.mel.reshape(rec.frames, 4, -1).mean((1, 2)) > np.log(1e-3) / 2
    assert np.corrcoef(mel_loud, rec.lip_open > 0.05)[0, 1] > 0.9
    assert not load_split(cache, "val", mirror=False, offsets={"clip3": 1})[0].name.endswith("~mirror")
    assert [c.name for c in load_split(cache, "train", mirror=False, unsynced=False)] == ["clip0", "clip1", "clip2"]


def test_dev_selection_exports_the_best_checkpoint(tmp_path: Path) -> None:
    _fake_cache(tmp_path / "cache", lag=3)
    for k in range(5):  # dev scoring reads each clip's audio file: give the synthetic clips silent wavs
        with wave.open(str(tmp_path / f"clip{k}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.zeros(16000 * 4, np.int16).tobytes())
    idx = json.loads((tmp_path / "cache" / "index.json").read_text())
    for r in idx["clips"]:
        r["source"] = str(tmp_path / f"{r['name']}.wav")
    (tmp_path / "cache" / "index.json").write_text(json.dumps(idx))
    cfg = _config(tmp_path, 4, dev_identities=["id1"], sync_offsets={"clip4": 3}, velocity_loss="norm",
                  mouth_gain_calibration=True, freq_masks=2, eq_tilt=1.0, style_noise=0.01)
    weights = train(cfg, resume=False, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert all(r["dev_score"] and r["dev_lmdv"] for r in rows)
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        info = json.loads(f.metadata()["info"])
    assert info["dev_clips"] == ["clip1"] and "clip1" not in info["train_clips"]
    assert info["recovered_offsets"] == {"clip4": 3}
    best = min(rows, key=lambda r: float(r["dev_score"]))
    assert info["selected"]["step"] == int(best["step"])
    table = {r["gain"]: r["score"] for r in info["mouth_gain_dev_table"]}
    assert table[info["mouth_gain"]] == min(table.values())
    again = export_selected(cfg)  # re-export the selected weights without training: the same file
    with safe_open(str(again), "pt") as f:
        info2 = json.loads(f.metadata()["info"])
    assert info2["selected"] == info["selected"] and info2["mouth_gain"] == info["mouth_gain"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"task": "audio2motion", "velocity_loss": "l3"}))
    with pytest.raises(FaceAnimError, match="velocity_loss"):
        load_config(p)


def test_branchwise_weight_decay_and_free_bits_config(tmp_path: Path) -> None:
    from faceanim.models.audio2motion.network import Audio2Motion
    from faceanim.train.audio2motion_trainer import _param_groups

    cfg = load_config(_config(tmp_path, 2, weight_decay=0.01, vae_weight_decay=1e-4, kl_free_bits=0.02))
    model = Audio2Motion(cfg.model)
    lip, vae = _param_groups(model, cfg)
    assert (lip["weight_decay"], vae["weight_decay"]) == (0.01, 1e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    assert len(lip["params"]) + len(vae["params"]) == len(names)
    assert {names[id(p)].split(".")[0] for p in vae["params"]} == {
        "post_in", "post", "post_out", "prior", "z_in", "dec", "eye_head", "pose_head"}
    assert not any(names[id(p)].startswith(("lip.", "mouth_head")) for p in vae["params"])
    same = _param_groups(model, load_config(_config(tmp_path, 2, weight_decay=0.01)))
    assert same[1]["weight_decay"] == 0.01  # unset: one decay for the whole network, as before


def test_collapse_guard_in_model_selection(tmp_path: Path) -> None:
    from faceanim.train.audio2motion_trainer import _qualifies

    cfg = load_config(_config(tmp_path, 2, min_dev_kl=0.05, min_pose_ratio=0.4))
    assert _qualifies({"score": 0.9, "kl": 0.2, "pose_ratio": 0.5}, cfg)
    assert not _qualifies({"score": 0.8, "kl": 0.002, "pose_ratio": 0.5}, cfg)  # collapsed posterior
    assert not _qualifies({"score": 0.8, "kl": 0.2, "pose_ratio": 0.2}, cfg)  # narrow sampled pose
    assert _qualifies({"score": 0.8}, load_config(_config(tmp_path, 2)))  # no guard configured
