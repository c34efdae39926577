"""The audio-to-motion trainer on a small synthetic cache: runs, logs, checkpoints, resumes, exports."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from faceanim.audio.weights import load_audio2motion
from faceanim.errors import FaceAnimError
from faceanim.face.model import load_face_model
from faceanim.train.audio2motion_trainer import load_config, train
from faceanim.train.talking_data import ClipRecord


def _fake_cache(root: Path) -> Path:
    """Clips whose mouth opens with the loudness of their (synthetic) log-mels."""
    rng = np.random.default_rng(0)
    can = load_face_model().canonical
    (root / "clips").mkdir(parents=True)
    records = []
    for k, split in enumerate(["train", "train", "train", "val"]):
        n = 60 + 10 * k
        loud = (np.sin(np.arange(n) / 3.0 + k) > 0).astype(np.float32)
        expr = np.repeat(can[None], n, 0).astype(np.float32)
        expr[:, 14, 1] += 0.1 * loud  # lower lip
        mel = np.repeat(np.log(1e-3 + loud), 4)[:, None] + 0.1 * rng.standard_normal((4 * n, 80))
        arrays = {
            "valid": np.ones(n, bool), "expression": expr, "rotation": np.repeat(np.eye(3)[None], n, 0),
            "angles": rng.standard_normal((n, 3)).astype(np.float32), "translation": np.zeros((n, 3), np.float32),
            "scale": np.full(n, 100.0, np.float32), "eye_open": np.full((n, 2), 0.3, np.float32),
            "lip_open": 0.1 * loud, "gaze": np.zeros((n, 4), np.float32), "source_fps": np.float64(25.0),
            "mel": mel.astype(np.float32), "envelope": loud,
        }
        name = f"clip{k}"
        np.savez(root / "clips" / f"{name}.npz", **arrays)
        records.append(asdict(ClipRecord(name, name + ".mp4", f"id{k}", n, 25.0, 1.0, 0, 0.9, split, "")))
    (root / "index.json").write_text(json.dumps({"clips": records}))
    return root


def _config(tmp: Path, steps: int) -> Path:
    cfg = {"task": "audio2motion", "cache": str(tmp / "cache"), "output": str(tmp / "run"),
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
    assert cfg.max_minutes <= 40 and cfg.model.d_model == 128
