"""Lip-sync acceptance on held-out talking clips: LMD / LMD-v of the network against two honest baselines (a
mouth driven by the audio energy envelope; the source held still), mouth–envelope correlation, A/V offset,
seed diversity and silence — all through the same generation path ``speak`` uses, on the same harness.

Landmarks are compared pose-free, in canonical face units ×100 (percent of the face's RMS radius); each clip's
"source" is its own resting face (median of its most closed-mouth frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceanim.audio.generate import generate, speech_input
from faceanim.audio.sync import speech_energy, sync_offset
from faceanim.audio.targets import landmark_groups, rest_expression, style_vector
from faceanim.eval.metrics import diversity, lmd, lmd_v, pearson
from faceanim.face.ratios import lip_open_ratio
from faceanim.media.audio import iter_audio
from faceanim.train.talking_data import load_clip, load_index

__all__ = ["energy_direction", "evaluate_speech", "silence_check"]

UNITS = 100.0  # canonical units → percent of the face radius


def _envelope_norm(env: np.ndarray) -> np.ndarray:
    env = np.asarray(env, np.float64)
    return env / max(float(np.percentile(env, 95)), 1e-6)


def energy_direction(cache: Path) -> np.ndarray:
    """Least-squares mouth displacement per unit of normalised audio envelope ``(M, 3)``, fitted on the
    synced training clips (the envelope baseline's one learned parameter)."""
    g = landmark_groups()
    num = np.zeros((len(g.mouth), 3))
    den = 0.0
    for r in load_index(cache):
        if r.split != "train" or r.excluded or not r.frames:
            continue
        a = load_clip(Path(cache) / "clips" / f"{r.name}.npz")
        disp = a["expression"][:, g.mouth] - rest_expression(a["expression"], a["lip_open"])[g.mouth]
        x = _envelope_norm(a["envelope"])
        num += np.tensordot(x, disp, axes=(0, 0))
        den += float(x @ x)
    return num / max(den, 1e-9)


def _generated(model, source: str, rest: np.ndarray, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(expressions (n, 478, 3), pose (n, 6)) generated from the clip's own audio, as ``speak`` does."""
    from faceanim.pipeline.speak import _lower_face_weights, speech_expression

    lower = _lower_face_weights()
    frames = generate(model, speech_input(iter_audio(source, 16000, 2.0)), style_vector(rest), seed=seed)
    exprs, poses = [], []
    for f in frames:
        if len(exprs) == n:
            break
        exprs.append(speech_expression(rest, f, 1.0, lower))
        poses.append(f.pose)
    while len(exprs) < n:  # audio a frame shorter than the video track
        exprs.append(exprs[-1])
        poses.append(poses[-1])
    return np.asarray(exprs), np.asarray(poses)


def evaluate_speech(model, cache: Path, seeds: tuple[int, int] = (0, 1)) -> dict:
    """Per-clip and mean metrics on the cache's usable validation clips."""
    g = landmark_groups()
    direction = energy_direction(cache)
    rows = []
    for r in load_index(cache):
        if r.split != "val" or r.excluded or not r.frames:
            continue
        a = load_clip(Path(cache) / "clips" / f"{r.name}.npz")
        n = r.frames
        expr = a["expression"].astype(np.float64)
        rest = rest_expression(expr, a["lip_open"])
        gt = expr[:, g.mouth] * UNITS
        energy = speech_energy(a["mel"])
        env = _envelope_norm(a["envelope"])
        preds = {}
        poses = []
        for s in seeds:
            e, p = _generated(model, r.source, rest, s, n)
            preds[f"network_seed{s}"] = e[:, g.mouth]
            poses.append(p)
            if s == seeds[0]:
                net_lip = lip_open_ratio(e)
        preds["energy_baseline"] = rest[g.mouth][None] + env[:, None, None] * direction[None]
        preds["still_baseline"] = np.repeat(rest[g.mouth][None], n, 0)
        row: dict = {"clip": r.name, "frames": n}
        for name, m in preds.items():
            row[f"lmd_{name}"] = lmd(m * UNITS, gt)
            row[f"lmdv_{name}"] = lmd_v(m * UNITS, gt)
        gt_lip = a["lip_open"].astype(np.float64)
        row["corr_gt"] = pearson(gt_lip, env)
        row["corr_network"] = pearson(net_lip, env)
        row["offset_gt"], _ = sync_offset(gt_lip, energy)
        row["offset_network"], row["sync_corr_network"] = sync_offset(net_lip, energy)
        row["pose_diversity"] = diversity(np.stack(poses))
        row["pose_std_seed0"] = float(poses[0].std(0).mean())
        rows.append(row)
    if not rows:
        return {"clips": [], "mean": {}}
    w = np.array([r["frames"] for r in rows], np.float64)
    keys = [k for k in rows[0] if k not in ("clip", "frames")]
    mean = {k: float(np.average([r[k] for r in rows], weights=w)) for k in keys}
    mean["offset_network_abs_max"] = int(max(abs(r["offset_network"]) for r in rows))
    l0, l1 = mean[f"lmd_network_seed{seeds[0]}"], mean[f"lmd_network_seed{seeds[1]}"]
    mean["seed_lmd_rel_diff"] = abs(l0 - l1) / max(min(l0, l1), 1e-9)
    return {"clips": rows, "mean": mean, "frames": int(w.sum()),
            "units": "LMD/LMD-v in canonical face units x100 (percent of the face's RMS radius)"}


def silence_check(model, rest: np.ndarray, seconds: float = 6.0, seed: int = 0) -> dict:
    """Lip opening with 2 s of a 220 Hz tone-modulated 'speech' stand-in between silences: the silent parts'
    opening must stay at the rest face's."""
    from faceanim.pipeline.speak import _lower_face_weights, speech_expression

    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t, dtype=np.float32)
    loud = (t >= seconds / 3) & (t < 2 * seconds / 3)
    x[loud] = (0.3 * np.sin(2 * np.pi * 220 * t[loud]) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[loud]))).astype(
        np.float32)
    lower = _lower_face_weights()
    lips, gates = [], []
    for f in generate(model, speech_input([x[i : i + sr] for i in range(0, x.size, sr)]), style_vector(rest),
                      seed=seed):
        lips.append(float(lip_open_ratio(speech_expression(rest, f, 1.0, lower))))
        gates.append(f.gate)
    lips_a, gates_a = np.asarray(lips), np.asarray(gates)
    silent = gates_a == 0
    return {"rest_lip_open": float(lip_open_ratio(rest)), "silent_frames": int(silent.sum()),
            "silent_lip_open_max": float(lips_a[silent].max()) if silent.any() else float("nan"),
            "speech_lip_open_mean": float(lips_a[~silent].mean()) if (~silent).any() else float("nan")}
