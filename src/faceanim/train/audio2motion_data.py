"""Training windows for audio-to-motion from the talking-clip cache (targets as displacements from each
clip's own resting face, head pose relative to the window's mean), with mirror augmentation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceanim.audio.targets import frame_features, landmark_groups, pose_vector, rest_expression, style_vector
from faceanim.face.model import load_face_model
from faceanim.train.talking_data import MELS_PER_FRAME, ClipRecord, load_clip, load_index

__all__ = ["Batch", "ClipTargets", "clip_targets", "load_split", "sample_batch"]


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


def load_split(cache: Path, split: str, mirror: bool = True, unsynced: bool = True, encoder=None
               ) -> list[ClipTargets]:
    """Usable clips of ``split``; with ``unsynced`` also the out-of-sync ones (their mouths are masked).

    With ``encoder`` (a speech encoder) each clip's audio is encoded from its source file."""
    out: list[ClipTargets] = []
    records: list[ClipRecord] = load_index(cache)
    for r in records:
        if r.split != split or r.frames == 0:
            continue
        sync_only = r.excluded.startswith("audio and video out of sync")
        if r.excluded and not (unsynced and sync_only):
            continue
        arrays = load_clip(Path(cache) / "clips" / f"{r.name}.npz")
        feats = None
        if encoder is not None:
            from faceanim.media.audio import read_audio

            feats = encoder.features(read_audio(r.source, 16000))
            if len(feats) < r.frames:
                feats = np.concatenate([feats, np.repeat(feats[-1:], r.frames - len(feats), 0)])
        out.append(clip_targets(r.name, arrays, synced=not r.excluded, feats=feats, source=r.source))
        if mirror:
            out.append(clip_targets(r.name, arrays, synced=not r.excluded, mirror=True, feats=feats,
                                    source=r.source))
    return out


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


def sample_batch(clips: list[ClipTargets], batch: int, length: int, rng: np.random.Generator) -> Batch:
    """Random windows, clips drawn in proportion to their length; short clips are zero-padded and masked."""
    w = np.array([c.frames for c in clips], np.float64)
    picks = rng.choice(len(clips), size=batch, p=w / w.sum())
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feats", "mouth", "eyes", "pose", "dense")}
    masks, styles, mw = [], [], []
    for i in picks:
        c = clips[i]
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
