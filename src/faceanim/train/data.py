"""Training-data cache for the neural renderer (``faceanim prepare-data``), computed once per clip.

Per clip, a few frames are the sources; each is prepared exactly as at inference (``Animator.prepare``:
aligned 256² crop, masks, inpainted background), and every sampled frame of the clip drives it through the
real motion path (tracker → ``Motion`` → relative transfer → analytic renderer). Stored per (source, driving)
pair: the ground truth (the driving frame cut with the source's crop, as the eval harness does), the analytic
renderer's output and backward flow (the prior), the target and ground-truth landmarks, and the driving
frame's foreground mask. One folder of plain ``.npy`` files per clip (memory-mapped when training), written
atomically; clips already cached are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceanim.errors import FaceAnimError, MediaError
from faceanim.face.crop import CropConfig, warp_to_crop
from faceanim.face.masks import Segmenter
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.video import iter_video, probe_video
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.train.splits import identity_of

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
CACHE_VERSION = 1


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 256  # crop size (the renderer's output)
    frames: int = 40  # driving frames sampled per clip (evenly over the clip)
    sources: int = 2  # source frames per clip (the first, then evenly spaced)
    flow_size: int = 64  # the analytic prior flow is stored at this resolution (normalised [-1, 1] grid)
    mask_size: int = 64  # driving foreground mask resolution (target of the training-only mask head)
    max_side: int = 720  # decode wide clips at most this large


def find_videos(inputs: list[Path]) -> list[Path]:
    """Video files among ``inputs`` (folders are searched recursively), sorted; MediaError if none."""
    found: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise MediaError("no such file or folder", path=p)
    if not found:
        raise MediaError("no video files found", path=inputs[0] if inputs else None)
    return found


def _sample_frames(path: Path, cfg: PrepareConfig) -> list:
    info = probe_video(path)
    total = max(int(info.frame_count or 0), 1)
    every = max(1, total // (cfg.frames + 1))
    return list(iter_video(path, max_frames=cfg.frames + 1, every=every, max_side=cfg.max_side))


def prepare_clip(path: Path, cfg: PrepareConfig, segmenter: Segmenter) -> dict[str, np.ndarray]:
    """All arrays of one clip (see the module docstring); FaceAnimError if it has too few face frames."""
    frames = _sample_frames(path, cfg)
    motions, states, images = [], [], []
    with FaceTracker(TrackerConfig(smoothing=0.0)) as tracker:
        for vf in frames:
            tf = tracker.update(vf.image, vf.index, vf.time)
            if tf.state is None or not tf.has_face:
                continue
            motions.append(Motion.from_state(tf.state))
            states.append(tf.state)
            images.append(vf.image)
    n = len(images)
    if n < 4:
        raise FaceAnimError(f"only {n} frames with a face", path=path)
    src_idx = sorted({round(float(i)) for i in np.linspace(0, n - 1, cfg.sources + 1)[:-1]})
    size, fs, ms = cfg.size, cfg.flow_size, cfg.mask_size
    out: dict[str, list] = {k: [] for k in ("src", "src_fg", "src_bg", "src_lmk", "gt", "base", "flow", "drv_lmk",
                                            "gt_lmk", "gt_fg", "lip_open")}
    config = AnimatorConfig(renderer="analytic", crop=CropConfig(size=size), crop_only=True)
    grid_scale = 2.0 / (size - 1)
    for s in src_idx:
        try:
            anim = Animator.prepare(images[s], config, path=str(path))
        except FaceAnimError:
            continue
        face = anim.faces[0]
        prep = face.renderer_state
        crop = face.source.crop
        out["src"].append(face.source.crop_image)
        out["src_fg"].append(np.round(face.source.masks.foreground * 255).astype(np.uint8))
        out["src_bg"].append(prep.background)
        out["src_lmk"].append(face.source.state.landmarks[:, :2].astype(np.float32))
        per = {k: [] for k in ("gt", "base", "flow", "drv_lmk", "gt_lmk", "gt_fg", "lip_open")}
        for d in range(n):
            if d == s:
                continue
            res = anim.animate(motions[d], motions[s])
            gt = warp_to_crop(images[d], crop)
            flow = res.outputs[0].flow
            if res.outputs[0].flow_weight is not None:  # the prior as the renderer feeds it: still on the background
                w = res.outputs[0].flow_weight[..., None]
                flow = flow * w + prep.grid_xy * (1.0 - w)
            per["gt"].append(gt)
            per["base"].append(res.image)
            small = cv2.resize(flow, (fs, fs), interpolation=cv2.INTER_AREA) * grid_scale - 1.0
            per["flow"].append(small.astype(np.float16))
            per["drv_lmk"].append(res.targets[0].landmarks[:, :2].astype(np.float16))
            per["gt_lmk"].append(crop.to_crop(states[d].landmarks)[:, :2].astype(np.float16))
            fg = cv2.resize(segmenter.foreground(gt), (ms, ms), interpolation=cv2.INTER_AREA)
            per["gt_fg"].append(np.round(fg * 255).astype(np.uint8))
            per["lip_open"].append(np.float32(res.targets[0].lip_open))
        for k, v in per.items():
            out[k].append(np.stack(v))
    if not out["src"]:
        raise FaceAnimError("no source frame could be prepared", path=path)
    m = min(len(x) for x in out["gt"])
    arrays = {k: np.stack([x[:m] for x in v]) if k in per else np.stack(v) for k, v in out.items()}
    return arrays


def _save_clip(folder: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for k, v in arrays.items():
            np.save(tmp / f"{k}.npy", np.ascontiguousarray(v), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_video_cache(inputs: list[Path], output: Path, progress: bool = True,
                        config: PrepareConfig = PrepareConfig()) -> dict:
    """Cache every clip under ``inputs`` into ``output``; returns the index (also written as ``index.json``)."""
    videos = find_videos(inputs)
    clips_dir = output / "clips"
    try:
        clips_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MediaError(f"cannot create cache folder: {e.strerror or e}", path=output) from e
    entries, skipped = [], []
    with Segmenter() as seg:
        for video in tqdm(videos, disable=not progress, unit="clip", desc="prepare-data"):
            key = f"{video.parent.name}__{video.stem}"
            folder = clips_dir / key
            meta_file = folder / "meta.json"
            if meta_file.exists():
                meta = json.loads(meta_file.read_text())
                if meta.get("version") == CACHE_VERSION and meta.get("config") == asdict(config):
                    entries.append(meta)
                    continue
            try:
                arrays = prepare_clip(video, config, seg)
            except FaceAnimError as exc:
                skipped.append({"clip": str(video), "reason": exc.message})
                continue
            meta = {"version": CACHE_VERSION, "config": asdict(config), "key": key, "clip": str(video),
                    "name": video.name, "identity": identity_of(video), "sources": int(arrays["src"].shape[0]),
                    "pairs": int(arrays["gt"].shape[1])}
            _save_clip(folder, arrays, meta)
            entries.append(meta)
    index = {"version": CACHE_VERSION, "config": asdict(config), "clips": entries, "skipped": skipped}
    tmp = output / f".index-{os.getpid()}.json"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, output / "index.json")
    with contextlib.suppress(OSError):
        os.chmod(output / "index.json", 0o644)
    return index
