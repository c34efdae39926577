"""Training windows for audio-to-motion from the talking-clip cache (targets as displacements from each
clip's own resting face, head pose relative to the window's mean), with mirror augmentation.

Out-of-sync training clips can be recovered: :func:`estimate_sync_offsets` measures each clip's A/V offset
against a *sync expert* (a network trained without those clips' mouths) and :func:`load_split` shifts the audio
of the confidently measured ones by that offset and uses their mouths as targets. Validation clips are never
shifted or recovered (the evaluation harness reads the cache's own sync decisions). A dev split carved out of the
training identities (``dev`` identities) is for model selection, so validation is only looked at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceanim.audio.targets import frame_features, landmark_groups, pose_vector, rest_expression, style_vector
from faceanim.face.model import load_face_model
from faceanim.train.talking_data import MELS_PER_FRAME, ClipRecord, load_clip, load_index

__all__ = ["Batch", "ClipTargets", "clip_targets", "estimate_sync_offsets", "load_split", "sample_batch",
           "shift_audio", "speed_window"]

_PER_FRAME = ("valid", "expression", "rotation", "angles", "translation", "scale", "eye_open", "lip_open", "gaze")


@dataclass(frozen=True)
class ClipTargets:
    """One clip ready for training: log-mels, subject style and per-frame targets."""

    name: str
    mel: np.ndarray  # (4T, n_mels)
    style: np.ndarray  # (style_points·3,)
    rest: np.ndarray  # (478, 3)
    dense: np.ndarray  # (T, 478, 3) expression minus rest
    angles: np.ndarray  # (T, 3) degrees
    translation: np.ndarray  # (T, 3)
    scale: np.ndarray  # (T,)
    lip_open: np.ndarray  # (T,)
    synced: bool  # False: audio-video sync not confirmed, so its mouth is not a target
    feats: np.ndarray | None = None  # (T, dim) speech-encoder features (None: log-mels are used)
    source: str | None = None  # the original media file (its audio)

    @property
    def frames(self) -> int:
        return len(self.dense)


@dataclass(frozen=True)
class Batch:
    feats: np.ndarray  # (B, T, 4·n_mels)
    style: np.ndarray  # (B, S·3)
    mouth: np.ndarray  # (B, T, M, 3)
    eyes: np.ndarray  # (B, T, E, 3)
    pose: np.ndarray  # (B, T, 6)
    dense: np.ndarray  # (B, T, 478, 3)
    mask: np.ndarray  # (B, T) frame is real (not padding)
    mouth_weight: np.ndarray  # (B,) 1 if the clip's sync is confirmed


def _mirror(expr: np.ndarray) -> np.ndarray:
    m = load_face_model().mirror
    out = np.asarray(expr)[..., m, :].copy()
    out[..., 0] *= -1.0
    return out


def clip_targets(name: str, arrays: dict[str, np.ndarray], synced: bool, mirror: bool = False,
                 feats: np.ndarray | None = None, source: str | None = None) -> ClipTargets:
    """Targets of one cached clip (optionally left-right mirrored)."""
    expr = arrays["expression"].astype(np.float64)
    angles = arrays["angles"].astype(np.float64).copy()
    tr = arrays["translation"].astype(np.float64).copy()
    if mirror:
        expr = _mirror(expr)
        angles[:, 0] *= -1.0  # yaw
        angles[:, 2] *= -1.0  # roll
        tr[:, 0] *= -1.0
    rest = rest_expression(expr, arrays["lip_open"])
    return ClipTargets(
        name=name + ("~mirror" if mirror else ""),
        mel=arrays["mel"].astype(np.float32),
        style=style_vector(rest),
        rest=rest.astype(np.float32),
        dense=(expr - rest).astype(np.float32),
        angles=angles.astype(np.float32),
        translation=tr.astype(np.float32),
        scale=arrays["scale"].astype(np.float32),
        lip_open=arrays["lip_open"].astype(np.float32),
        synced=synced,
        feats=None if feats is None else feats[: len(expr)].astype(np.float32),
        source=source,
    )


def shift_audio(arrays: dict[str, np.ndarray], offset: int, feats: np.ndarray | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Re-align a clip whose mouth lags its audio by ``offset`` frames (> 0; < 0: leads): video frame ``t`` is
    paired with audio frame ``t - offset``. Both tracks are trimmed to the overlap (no padding)."""
    n = len(arrays["lip_open"])
    k = int(offset)
    if k == 0:
        return arrays, feats
    if abs(k) >= n - 1:
        raise ValueError(f"offset {k} too large for a {n}-frame clip")
    v0, a0, m = (k, 0, n - k) if k > 0 else (0, -k, n + k)
    out = dict(arrays)
    for key in _PER_FRAME:
        if key in arrays:
            out[key] = arrays[key][v0 : v0 + m]
    out["mel"] = arrays["mel"][a0 * MELS_PER_FRAME : (a0 + m) * MELS_PER_FRAME]
    if "envelope" in arrays:
        out["envelope"] = arrays["envelope"][a0 : a0 + m]
    return out, None if feats is None else feats[a0 : a0 + m]


def load_split(cache: Path, split: str, mirror: bool = True, unsynced: bool = True, encoder=None,
               offsets: dict[str, int] | None = None, dev: tuple[str, ...] | list[str] = (),
               synced_only: bool = False) -> list[ClipTargets]:
    """Usable clips of ``split``; with ``unsynced`` also the out-of-sync ones (their mouths are masked).

    ``split`` is "train", "val" or "dev": "dev" is the training clips whose identity is in ``dev`` (held out of
    "train" whenever ``dev`` is given). ``offsets`` (clip name → frames, training/dev clips only) recovers an
    out-of-sync clip: its audio is shifted by the offset and its mouth becomes a target. ``synced_only`` keeps
    only clips with mouth targets. With ``encoder`` (a speech encoder) each clip's audio is encoded from its
    source file."""
    offsets = offsets or {}
    dev_ids = set(dev)
    out: list[ClipTargets] = []
    records: list[ClipRecord] = load_index(cache)
    for r in records:
        if r.frames == 0:
            continue
        if split == "dev":
            if r.split != "train" or r.identity not in dev_ids:
                continue
        elif r.split != split or (split == "train" and r.identity in dev_ids):
            continue
        sync_only = r.excluded.startswith("audio and video out of sync")
        recovered = sync_only and r.split == "train" and r.name in offsets
        synced = not r.excluded or recovered
        if (r.excluded and not (unsynced and sync_only) and not recovered) or (synced_only and not synced):
            continue
        arrays = load_clip(Path(cache) / "clips" / f"{r.name}.npz")
        feats = None
        if encoder is not None:
            from faceanim.media.audio import read_audio

            feats = encoder.features(read_audio(r.source, 16000))
            if len(feats) < r.frames:
                feats = np.concatenate([feats, np.repeat(feats[-1:], r.frames - len(feats), 0)])
        if recovered:
            arrays, feats = shift_audio(arrays, offsets[r.name], feats)
        out.append(clip_targets(r.name, arrays, synced=synced, feats=feats, source=r.source))
        if mirror:
            out.append(clip_targets(r.name, arrays, synced=synced, mirror=True, feats=feats, source=r.source))
    return out


def _lag_profile(a: np.ndarray, b: np.ndarray, max_lag: int) -> dict[int, float]:
    """Correlation of high-passed ``a[t]`` with ``b[t - k]`` for each lag ``k``."""
    from faceanim.audio.sync import highpass
    from faceanim.eval.metrics import pearson

    a, b = highpass(a), highpass(b)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    out = {}
    for k in range(-max_lag, max_lag + 1):
        lo, hi = max(k, 0), n + min(k, 0)
        out[k] = float(pearson(a[lo:hi], b[lo - k : hi - k])) if hi - lo > 10 else float("nan")
    return out


def _peak(profile: dict[int, float]) -> tuple[int, float, float]:
    """(best lag, its correlation, prominence: best minus the best lag more than 2 frames away)."""
    ok = {k: v for k, v in profile.items() if np.isfinite(v)}
    if not ok:
        return 0, float("nan"), 0.0
    k = max(ok, key=lambda q: ok[q])
    rest = [v for q, v in ok.items() if abs(q - k) > 2]
    return k, ok[k], ok[k] - (max(rest) if rest else 0.0)


def estimate_sync_offsets(model, cache: Path, max_lag: int = 10, min_corr: float = 0.3,
                          min_prominence: float = 0.15, max_offset: int = 5) -> list[dict]:
    """A/V offsets of the cache's out-of-sync *training* clips against a sync expert.

    ``model`` (an :class:`~faceanim.models.audio2motion.Audio2Motion` trained without these clips' mouths)
    predicts each clip's lip opening from its audio; the lag of peak correlation between the tracked and the
    predicted (high-passed) lip opening is the clip's offset (> 0: the mouth lags). An estimate is confident
    (``recover`` = True) if its peak correlation ≥ ``min_corr`` and its prominence over every lag more than 2
    frames away ≥ ``min_prominence``, or if it agrees within a frame with the energy-based estimate of the cache
    at prominence ≥ ``min_prominence``; and |offset| ≤ ``max_offset``. Returns one row per clip with the reason."""
    import torch

    from faceanim.audio.sync import speech_energy
    from faceanim.face.ratios import lip_open_ratio

    g = landmark_groups()
    rows = []
    for r in load_index(cache):
        if r.split != "train" or not r.frames or not r.excluded.startswith("audio and video out of sync"):
            continue
        a = load_clip(Path(cache) / "clips" / f"{r.name}.npz")
        expr = a["expression"].astype(np.float64)
        lip = a["lip_open"].astype(np.float64)
        rest = rest_expression(expr, lip)
        with torch.no_grad():
            f = torch.from_numpy(frame_features(a["mel"], MELS_PER_FRAME))[None]
            k_lat = -(-f.shape[1] // model.config.latent_stride)
            out = model(f, torch.from_numpy(style_vector(rest))[None],
                        noise=torch.zeros(1, k_lat, model.config.latent_dim))
        n = min(len(lip), f.shape[1])
        pred = np.repeat(rest[None], n, 0)
        pred[:, g.mouth] += out.mouth[0, :n].numpy()
        k, c, prom = _peak(_lag_profile(lip[:n], lip_open_ratio(pred), max_lag))
        ke, _, _ = _peak(_lag_profile(lip[:n], speech_energy(a["mel"], MELS_PER_FRAME)[:n], max_lag))
        confident = prom >= min_prominence and (c >= min_corr or abs(k - ke) <= 1)
        if abs(k) > max_offset:
            why = f"offset {k:+d} beyond ±{max_offset}"
        elif not confident:
            why = f"not confident (corr {c:.2f}, prominence {prom:.2f}, energy estimate {ke:+d})"
        else:
            why = ""
        rows.append({"name": r.name, "frames": r.frames, "cache_offset": r.offset, "offset": int(k),
                     "corr": round(c, 3), "prominence": round(prom, 3), "energy_offset": int(ke),
                     "recover": not why, "why_not": why})
    return rows


def window(clip: ClipTargets, start: int, length: int) -> dict[str, np.ndarray]:
    """Features and targets of frames [start, start + length) of one clip (no padding)."""
    g = landmark_groups()
    sl = slice(start, start + length)
    dense = clip.dense[sl]
    if clip.feats is not None:
        feats = clip.feats[sl]
    else:
        feats = frame_features(clip.mel[start * MELS_PER_FRAME : (start + length) * MELS_PER_FRAME])
    return {
        "feats": feats,
        "mouth": dense[:, g.mouth],
        "eyes": dense[:, g.eyes],
        "pose": pose_vector(clip.angles[sl], clip.translation[sl], clip.scale[sl]),
        "dense": dense,
    }


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of ``x`` along axis 0 to ``n`` samples (first and last kept)."""
    t = np.linspace(0.0, len(x) - 1.0, n)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (t - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return (x[lo] * (1.0 - w) + x[hi] * w).astype(x.dtype)


def speed_window(clip: ClipTargets, start: int, length: int, rate: float) -> dict[str, np.ndarray]:
    """:func:`window` of ``length`` source frames played ``rate`` times faster (tempo only, pitch kept):
    features and targets linearly resampled in time to ``round(length / rate)`` frames; log-mels at their own
    10 ms resolution."""
    win = window(clip, start, length)
    n = max(2, round(length / rate))
    out = {k: _resample(v, n) for k, v in win.items() if k != "feats"}
    f = win["feats"]
    if clip.feats is None:  # 4 log-mel frames per video frame: resample the mel sequence itself
        mel = f.reshape(length * MELS_PER_FRAME, -1)
        out["feats"] = _resample(mel, n * MELS_PER_FRAME).reshape(n, -1)
    else:
        out["feats"] = _resample(f, n)
    return out


def sample_batch(clips: list[ClipTargets], batch: int, length: int, rng: np.random.Generator,
                 speed: float = 0.0) -> Batch:
    """Random windows, clips drawn in proportion to their length; short clips are zero-padded and masked.
    ``speed`` > 0: each window's tempo is perturbed by a factor drawn uniformly from [1 - speed, 1 + speed]
    (:func:`speed_window`; speech-rate variation the few training speakers do not cover)."""
    w = np.array([c.frames for c in clips], np.float64)
    picks = rng.choice(len(clips), size=batch, p=w / w.sum())
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feats", "mouth", "eyes", "pose", "dense")}
    masks, styles, mw = [], [], []
    for i in picks:
        c = clips[i]
        if speed > 0:
            rate = float(rng.uniform(1.0 - speed, 1.0 + speed))
            src = min(c.frames, max(2, int(length * rate)))  # source frames that play back in <= length frames
            start = int(rng.integers(0, c.frames - src + 1))
            win = speed_window(c, start, src, rate)
            n = len(win["dense"])
        else:
            n = min(length, c.frames)
            start = int(rng.integers(0, c.frames - n + 1))
            win = window(c, start, n)
        for k, v in win.items():
            pad = np.zeros((length - n, *v.shape[1:]), np.float32)
            parts[k].append(np.concatenate([v.astype(np.float32), pad]))
        masks.append(np.arange(length) < n)
        styles.append(c.style)
        mw.append(1.0 if c.synced else 0.0)
    return Batch(
        feats=np.stack(parts["feats"]), style=np.stack(styles), mouth=np.stack(parts["mouth"]),
        eyes=np.stack(parts["eyes"]), pose=np.stack(parts["pose"]), dense=np.stack(parts["dense"]),
        mask=np.stack(masks), mouth_weight=np.asarray(mw, np.float32),
    )
