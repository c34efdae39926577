"""Renderer training on real frames: cache, smoke training with a falling loss, resume, DDP, CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceanim.train.data import PrepareConfig, prepare_video_cache  # noqa: E402


@pytest.fixture(scope="module")
def tiny_cache(clip, tmp_path_factory) -> Path:
    """A real cache: one clip, 1 source, 6 driving frames (a few seconds to build)."""
    root = tmp_path_factory.mktemp("cache")
    index = prepare_video_cache([clip("liveportrait_d0.mp4")], root, progress=False,
                                config=PrepareConfig(frames=6, sources=1))
    assert index["clips"] and not index["skipped"]
    return root


def _config(tmp_path: Path, cache: Path, **over) -> Path:
    cfg = {"task": "renderer", "model": "mobileportrait_cpu", "cache": str(cache), "run_dir": str(tmp_path / "run"),
           "batch_size": 2, "patch": 128, "lr": 0.0005, "warmup": 5, "augment": False, "max_steps": 20,
           "log_every": 1, "threads": 1,
           "ckpt_minutes": 100, "losses": {"adv_start": 1000}}
    cfg.update(over)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _l1_on_cache(weights: Path | None, cache: Path) -> float:
    from faceanim.models import create_model
    from faceanim.train.export import load_model
    from faceanim.train.renderer_data import PairCache, collate

    model = load_model(weights) if weights else create_model("mobileportrait_cpu").eval()
    data = PairCache(cache, "all")
    errs = []
    with torch.no_grad():
        for ref in data.refs:
            b = collate([data.sample(ref)])
            errs.append(float(((model(b)["image"] - b["gt"]).abs() * b["valid"]).mean()))
    return float(np.mean(errs))


def test_cache_holds_real_pairs_with_the_analytic_prior(tiny_cache):
    folder = next((tiny_cache / "clips").iterdir())
    gt, base, flow = (np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("gt", "base", "flow"))
    assert gt.shape[:2] == base.shape[:2] == (1, 6) and gt.shape[2:] == (256, 256, 3)
    assert flow.shape == (1, 6, 64, 64, 2) and np.abs(flow).max() < 1.5  # normalised coordinates
    # the analytic output is a real render: close to the ground truth, not equal to it
    d = np.abs(gt.astype(np.float32) - base.astype(np.float32)).mean()
    assert 0.5 < d < 25.0


def test_smoke_training_lowers_the_loss_and_resumes(tiny_cache, tmp_path):
    from faceanim.train.checkpoint import load_tensors
    from faceanim.train.renderer_trainer import train

    before = _l1_on_cache(None, tiny_cache)
    cfg = _config(tmp_path, tiny_cache)
    weights = train(cfg, resume=False, progress=False, max_steps=20)  # ~20 s on 2 quiet cores
    rows = list(csvrows(tmp_path / "run" / "train_log.csv"))
    assert len(rows) == 20 and float(rows[-1]["samples"]) == 40
    total = np.array([float(r["total"]) for r in rows])
    assert total[-5:].mean() < 0.9 * total[:5].mean()  # the training loss falls
    # and the image stays the analytic prior's or better: 20 steps cannot wreck the zero-initialised start
    assert _l1_on_cache(weights, tiny_cache) < 1.1 * before
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000
    # resume: continues the step count with the optimizer moments restored
    weights = train(cfg, resume=True, progress=False, max_steps=23)
    _, meta = load_tensors(weights)
    assert meta["state"]["step"] == 23 and meta["state"]["sessions"] == 2
    optim, _ = load_tensors(weights.with_name("last.optim.safetensors"))
    assert any(k.endswith("exp_avg") for k in optim) and any(k.startswith("disc.") for k in optim)


def csvrows(path: Path):
    import csv

    with open(path) as fh:
        yield from csv.DictReader(fh)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo is exercised on Linux")
def test_ddp_two_processes_gloo(tiny_cache, tmp_path):
    cfg = _config(tmp_path, tiny_cache, max_steps=2, threads=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "faceanim",
         "-q", "train", "--config", str(cfg)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from faceanim.train.checkpoint import load_tensors

    _, meta = load_tensors(tmp_path / "run" / "last.safetensors")
    assert meta["state"]["step"] == 2 and meta["state"]["samples"] == 2 * 2 * 2  # steps × batch × 2 ranks


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["train", "--config", str(tmp_path / "missing.json")], ["train", "--config", str(bad)],
                 ["prepare-data", str(tmp_path / "nope"), "-o", str(tmp_path / "c")]):
        proc = subprocess.run([sys.executable, "-m", "faceanim", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert str(tmp_path) in proc.stderr


def test_moving_average_is_shipped_and_resuming_continues_the_raw_generator(tiny_cache, tmp_path):
    from faceanim.train.checkpoint import load_tensors
    from faceanim.train.renderer_trainer import train

    cfg = _config(tmp_path, tiny_cache, ema=0.9, max_steps=6)
    weights = train(cfg, resume=False, progress=False, max_steps=6)
    shipped, meta = load_tensors(weights)
    optim, _ = load_tensors(weights.with_name("last.optim.safetensors"))
    raw = {k[4:]: v for k, v in optim.items() if k.startswith("raw.")}
    assert meta["ema"] == 0.9 and set(raw) == set(shipped)
    key = "synthesis.out.weight"  # zero at step 0: the average lags the raw generator
    assert 0 < float(shipped[key].abs().sum()) < float(raw[key].abs().sum())
    weights = train(cfg, resume=True, progress=False, max_steps=8)
    again, meta = load_tensors(weights)
    assert meta["state"]["step"] == 8 and not torch.equal(again[key], shipped[key])
