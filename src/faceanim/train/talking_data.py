"""Talking-clip cache for audio-to-motion training: per 25-fps frame, the face's pose, canonical expression
and eye/lip ratios from mediapipe, aligned with 4 log-mel frames each, plus the audio envelope.

Each clip is checked for audio-video sync (mouth opening against the audio envelope); clips out of sync or
mostly without a face are kept in the cache but marked excluded, with the reason, never used silently.
Clips are split by identity, so validation people are never seen in training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceanim.audio.features import MelConfig, log_mel
from faceanim.audio.sync import speech_energy, sync_offset
from faceanim.errors import FaceAnimError, MediaError
from faceanim.eval.metrics import audio_envelope
from faceanim.face.geometry import euler_from_rotation
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.atomic import atomic_output
from faceanim.media.audio import read_audio
from faceanim.media.kinds import is_video_path
from faceanim.media.video import iter_video, probe_video
from faceanim.train.splits import identity_of, is_validation

__all__ = ["FPS", "ClipRecord", "load_clip", "load_index", "prepare_talking_cache", "track_clip"]

FPS = 25
MELS_PER_FRAME = 4
MAX_OFFSET = 2  # |A/V offset| in frames above which a clip is excluded as out of sync
MIN_FACE_SHARE = 0.9
@dataclass(frozen=True)
class ClipRecord:
    """One cached clip: where it came from, who it shows, how many frames, sync check, split."""

    name: str
    source: str
    identity: str
    frames: int
    source_fps: float
    face_share: float
    offset: int  # frames; > 0: the mouth lags the audio
    sync_corr: float  # mouth opening vs audio envelope at the best lag
    split: str  # "train" | "val"
    excluded: str  # "" if usable, else why not


def _interp(times: np.ndarray, t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of (N, ...) values sampled at ``times`` onto ``t``."""
    flat = values.reshape(len(values), -1)
    out = np.empty((len(t), flat.shape[1]), np.float64)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, times, flat[:, j])
    return out.reshape((len(t), *values.shape[1:]))


def track_clip(path: Path, max_side: int = 640) -> dict[str, np.ndarray]:
    """Per-frame face motion of a video, resampled to 25 fps (frames without a face are interpolated)."""
    times, valid, expr, rot, trans, scale, eyes, lips, gaze = ([] for _ in range(9))
    with FaceTracker(TrackerConfig(smoothing=0.5)) as tracker:
        for vf in iter_video(path, max_side=max_side):
            tf = tracker.update(vf.image, vf.index, vf.time)
            if tf.state is None:
                continue
            s = tf.state
            times.append(vf.time)
            valid.append(tf.has_face)
            expr.append(s.expression.astype(np.float32))
            rot.append(s.pose.rotation)
            trans.append(s.pose.translation)
            scale.append(s.pose.scale)
            eyes.append(s.eye_open)
            lips.append(s.lip_open)
            gaze.append(s.gaze)
    if not times:
        raise MediaError("no face found in any frame", path=path)
    tm = np.asarray(times)
    ok = np.asarray(valid)
    info = probe_video(path)
    duration = max(tm[-1] + 1.0 / float(info.fps), info.duration or 0.0)
    t = np.arange(int(np.floor(duration * FPS + 1e-6))) / FPS
    src = tm[ok] if ok.sum() >= 2 else tm
    pick = ok if ok.sum() >= 2 else np.ones_like(ok)

    def series(v: list) -> np.ndarray:
        return _interp(src, t, np.asarray(v, np.float64)[pick])

    nearest = np.clip(np.searchsorted(tm, t), 0, len(tm) - 1)
    angles = np.asarray([euler_from_rotation(r) for r in rot])
    return {
        "valid": ok[nearest] & (t >= tm[0] - 0.5 / FPS) & (t <= tm[-1] + 0.5 / FPS),
        "expression": series(expr).astype(np.float32),
        "rotation": np.asarray(rot, np.float64)[pick][np.clip(np.searchsorted(src, t), 0, len(src) - 1)],
        "angles": series(list(angles)).astype(np.float32),
        "translation": series(trans).astype(np.float32),
        "scale": series(scale).astype(np.float32).reshape(-1),
        "eye_open": series(eyes).astype(np.float32),
        "lip_open": series(lips).astype(np.float32).reshape(-1),
        "gaze": series(gaze).astype(np.float32),
        "source_fps": np.float64(float(info.fps)),
    }


def _cache_clip(path: Path, out: Path, mel: MelConfig) -> dict[str, np.ndarray]:
    face = track_clip(path)
    audio = read_audio(path, mel.sample_rate)
    feats = log_mel(audio, mel)
    n = min(len(face["lip_open"]), len(feats) // MELS_PER_FRAME)
    if n < FPS:
        raise MediaError(f"too short for training ({n} frames at 25 fps)", path=path)
    arrays = {k: (v[:n] if np.ndim(v) else v) for k, v in face.items()}
    arrays["mel"] = feats[: n * MELS_PER_FRAME].astype(np.float32)
    arrays["envelope"] = audio_envelope(audio, mel.sample_rate, FPS, n).astype(np.float32)
    with atomic_output(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return arrays


def load_clip(path: Path) -> dict[str, np.ndarray]:
    """One cached clip's arrays (pickle-free)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_index(cache: Path) -> list[ClipRecord]:
    """The clip records of a cache written by :func:`prepare_talking_cache`."""
    p = Path(cache) / "index.json"
    if not p.is_file():
        raise FaceAnimError("not a talking-clip cache (no index.json); run `faceanim prepare-data --kind talking`",
                            path=cache)
    return [ClipRecord(**r) for r in json.loads(p.read_text())["clips"]]


def _inputs(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.is_file() and is_video_path(q))
        elif p.is_file():
            files.append(p)
        else:
            raise MediaError("no such file or directory", path=p)
    if not files:
        raise FaceAnimError("no video clips found in the inputs")
    return files


def prepare_talking_cache(inputs: list[Path], output: Path, progress: bool) -> None:
    """Cache every talking clip in ``inputs`` (files or folders) under ``output``: ``clips/<name>.npz`` and
    ``index.json`` (identity, split, A/V offset, exclusions). Already cached clips are reused (resumable)."""
    output = Path(output)
    (output / "clips").mkdir(parents=True, exist_ok=True)
    mel = MelConfig()
    rows: list[dict] = []
    for path in tqdm(_inputs(inputs), disable=not progress, unit="clip", desc="talking clips"):
        name = path.stem
        npz = output / "clips" / f"{name}.npz"
        try:
            arrays = load_clip(npz) if npz.is_file() else _cache_clip(path, npz, mel)
        except FaceAnimError as e:
            rows.append({"name": name, "source": str(path), "identity": identity_of(name), "frames": 0,
                         "source_fps": 0.0, "face_share": 0.0, "offset": 0, "sync_corr": float("nan"),
                         "excluded": f"unusable: {e.message}"})
            continue
        lip = arrays["lip_open"].astype(np.float64)
        offset, corr = sync_offset(lip, speech_energy(arrays["mel"], MELS_PER_FRAME))
        face_share = float(arrays["valid"].mean())
        why = ""
        if face_share < MIN_FACE_SHARE:
            why = f"face visible in only {face_share:.0%} of frames"
        elif abs(offset) > MAX_OFFSET:
            why = f"audio and video out of sync by {offset:+d} frames"
        rows.append({"name": name, "source": str(path), "identity": identity_of(name), "frames": len(lip),
                     "source_fps": float(arrays["source_fps"]), "face_share": round(face_share, 3),
                     "offset": int(offset), "sync_corr": round(float(corr), 3), "excluded": why})
    # The project-wide identity split (shared with the neural renderer): validation people stay unseen.
    records = [ClipRecord(**r, split="val" if is_validation(r["name"]) else "train") for r in rows]
    summary = {
        "fps": FPS, "mel": asdict(mel), "mels_per_frame": MELS_PER_FRAME, "max_offset": MAX_OFFSET,
        "clips": [asdict(r) for r in records],
    }
    with atomic_output(output / "index.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
