"""Same-identity reconstruction (MobilePortrait Table 1 / LivePortrait self-reenactment).

Per clip: the source is the clip's first frame, the driver is the clip itself and the ground truth is
the clip. Output and ground truth are compared on the source's aligned 256×256 crop. Frame 0 (the source
against itself) is not scored, and image scores count only pixels inside the clip's frame (the crop is
padded with black beyond the image's edges, which would match trivially).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

import numpy as np

from faceanim.errors import MediaError
from faceanim.eval import metrics
from faceanim.eval.frames import EvalSettings, every_kth, session_frames, valid_mask
from faceanim.eval.identity import SAME_PERSON_DISTANCE, similarity
from faceanim.eval.measure import FrameMeasure, FrameMeasurer
from faceanim.face.crop import CropConfig, warp_to_crop
from faceanim.face.model import LEFT_EYE_CORNERS, LOWER_LIP, RIGHT_EYE_CORNERS, UPPER_LIP
from faceanim.media.video import VideoFrame, iter_video
from faceanim.pipeline.animator import Animator, AnimatorConfig

__all__ = ["EVAL_CROP", "ClipResult", "EvalSettings", "evaluate_clip"]

EVAL_CROP = 256
EYE_IDX = (list(LEFT_EYE_CORNERS), list(RIGHT_EYE_CORNERS))
LIPS = list(UPPER_LIP + LOWER_LIP)
MOUTH_BOX_SCALE = 1.5  # the mouth square's side, in units of the ground truth's lip extent


@dataclass(frozen=True)
class ClipResult:
    clip: str
    renderer: str
    metrics: dict[str, float]
    frames: int
    missing_output_faces: int
    sheet_rows: list[list[np.ndarray]] = field(default_factory=list, repr=False)


def landmark_metrics(out: list[FrameMeasure], gt: list[FrameMeasure]) -> dict[str, float]:
    """AKD, APD, AED, eye/lip ratio errors and the jitter ratio of two equally long measure sequences."""
    out_l = np.stack([m.landmarks[:, :2] for m in out])
    gt_l = np.stack([m.landmarks[:, :2] for m in gt])
    jit = metrics.temporal_jitter(out_l, gt_l)
    return {
        "akd": metrics.akd(out_l, gt_l),
        "apd": metrics.apd(np.stack([m.angles for m in out]), np.stack([m.angles for m in gt])),
        "aed": metrics.aed(
            np.stack([m.expression for m in out]), np.stack([m.expression for m in gt]), *EYE_IDX
        ),
        "eye_error": metrics.ratio_error(
            np.stack([m.eye_open for m in out]).mean(1), np.stack([m.eye_open for m in gt]).mean(1)
        ),
        "lip_error": metrics.ratio_error(np.array([m.lip_open for m in out]), np.array([m.lip_open for m in gt])),
        "jitter_ratio": jit["ratio"],
    }


def _mean(values: list[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def _median(values: list[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


def evaluate_clip(
    clip: str | Path,
    renderer: str,
    settings: EvalSettings = EvalSettings(),
    measurer: FrameMeasurer | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClipResult:
    """Self-reenact one clip with ``renderer`` and compare against the clip (frame 0 not scored)."""
    own = measurer is None
    measurer = measurer or FrameMeasurer()
    frames = iter_video(clip)
    first = next(frames, None)
    if first is None:
        raise MediaError("no frames", path=clip)
    config = AnimatorConfig(renderer=renderer, crop=CropConfig(size=EVAL_CROP))
    animator = Animator.prepare(first.image, config, path=str(clip))
    crop = animator.source.crop
    valid = valid_mask(first.image.shape, crop)
    csim_every = every_kth(settings.limit, settings.csim_frames)
    sheet_every = every_kth(settings.limit, settings.sheet_frames)
    scores: dict[str, list[float]] = {k: [] for k in
                                      ("psnr", "ssim", "l1", "mouth_psnr", "mouth_ssim", "sharpness", "csim",
                                       "csim_distance")}
    out_m: list[FrameMeasure] = []
    gt_m: list[FrameMeasure] = []
    bg_out = metrics.BackgroundAccumulator()
    bg_gt = metrics.BackgroundAccumulator()
    sheet: list[list[np.ndarray]] = []
    missing = 0
    n = 0

    def keep(vf: VideoFrame) -> tuple[int, np.ndarray]:
        return vf.index, warp_to_crop(vf.image, crop)  # the ground truth's crop, not the whole frame

    try:
        for (index, gt_crop), frame in session_frames(animator, chain([first], frames), settings, keep,
                                                      skip_first=True):
            out_crop = warp_to_crop(frame.image, crop)
            embed = n % csim_every == 0
            mg = measurer.measure(gt_crop, embed=embed, key=(str(clip), index))
            mo = measurer.measure(out_crop, embed=embed)
            scores["psnr"].append(metrics.psnr(out_crop, gt_crop, mask=valid))
            scores["ssim"].append(metrics.ssim(out_crop, gt_crop, mask=valid))
            scores["l1"].append(metrics.l1(out_crop, gt_crop, mask=valid))
            scores["sharpness"].append(metrics.sharpness_ratio(out_crop, gt_crop, mask=valid))
            rows, cols = metrics.box_around(mg.landmarks[LIPS], MOUTH_BOX_SCALE, gt_crop.shape)
            if rows.stop > rows.start and cols.stop > cols.start:
                box_valid = valid[rows, cols]
                scores["mouth_psnr"].append(metrics.psnr(out_crop[rows, cols], gt_crop[rows, cols], mask=box_valid))
                scores["mouth_ssim"].append(metrics.ssim(out_crop[rows, cols], gt_crop[rows, cols], mask=box_valid))
            if embed and measurer.embedder is not None:
                cos, dist = similarity(mo.embedding, mg.embedding)
                scores["csim"].append(cos)
                scores["csim_distance"].append(dist)
            missing += int(not mo.found)
            if mo.foreground is not None and mg.foreground is not None:
                bg_out.update(out_crop, mo.foreground)
                bg_gt.update(gt_crop, mg.foreground)
            out_m.append(replace(mo, foreground=None, embedding=None))
            gt_m.append(replace(mg, foreground=None, embedding=None))
            if len(sheet) < settings.sheet_frames and n % sheet_every == 0:
                sheet.append([animator.source.crop_image, gt_crop, out_crop])
            n += 1
            if progress:
                progress(1)
    finally:
        if own:
            measurer.close()
    values = {
        "psnr": _mean(scores["psnr"]),
        "ssim": _mean(scores["ssim"]),
        "l1": _mean(scores["l1"]),
        "mouth_psnr": _mean(scores["mouth_psnr"]),
        "mouth_ssim": _mean(scores["mouth_ssim"]),
        "sharpness": _median(scores["sharpness"]),
        "csim": _mean(scores["csim"]),
        "csim_distance": _mean(scores["csim_distance"]),
        "csim_same_person": _mean([float(d < SAME_PERSON_DISTANCE) for d in scores["csim_distance"] if np.isfinite(d)]),
        **(landmark_metrics(out_m, gt_m) if out_m else {}),
        "background": bg_out.value(),
        "background_gt": bg_gt.value(),
        "valid_fraction": float(valid.mean()),
    }
    return ClipResult(Path(clip).name, renderer, values, n, missing, sheet)
