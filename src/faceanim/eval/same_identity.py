"""Same-identity reconstruction (MobilePortrait Table 1 / LivePortrait self-reenactment).

Per clip: the source is the clip's first frame, the driver is the clip itself and the ground truth is
the clip. Output and ground truth are compared on the source's aligned 256×256 crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceanim.eval import metrics
from faceanim.eval.measure import FrameMeasurer
from faceanim.face.crop import CropConfig, warp_to_crop
from faceanim.face.model import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.video import iter_video
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig

EVAL_CROP = 256
EYE_IDX = (list(LEFT_EYE_CORNERS), list(RIGHT_EYE_CORNERS))


@dataclass(frozen=True)
class EvalSettings:
    limit: int | None = 60  # evaluated frames per clip
    every: int = 2  # evaluate every N-th frame
    sheet_frames: int = 4  # frames per clip in the contact sheet


@dataclass
class ClipResult:
    clip: str
    renderer: str
    metrics: dict[str, float]
    frames: int
    missing_output_faces: int
    sheet_rows: list[list[np.ndarray]] = field(default_factory=list, repr=False)


def _aggregate_landmark_metrics(out, gt) -> dict[str, float]:
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


def evaluate_clip(
    clip: str | Path,
    renderer: str,
    settings: EvalSettings = EvalSettings(),
    measurer: FrameMeasurer | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClipResult:
    """Self-reenact one clip with ``renderer`` and compare against the clip."""
    own = measurer is None
    measurer = measurer or FrameMeasurer()
    frames = iter_video(clip, every=settings.every)
    first = next(frames)
    config = AnimatorConfig(renderer=renderer, crop=CropConfig(size=EVAL_CROP))
    animator = Animator.prepare(first.image, config, path=str(clip))
    crop = animator.source.crop
    psnr, ssim, l1 = [], [], []
    out_m, gt_m = [], []
    bg_out = metrics.BackgroundAccumulator()
    bg_gt = metrics.BackgroundAccumulator()
    reference: Motion | None = None
    sheet: list[list[np.ndarray]] = []
    missing = 0
    n_eval = 0
    try:
        with FaceTracker(TrackerConfig(smoothing=0.5)) as tracker:
            for vf in _chain(first, frames):
                if settings.limit is not None and n_eval >= settings.limit:
                    break
                tf = tracker.update(vf.image, vf.index, vf.time)
                if tf.state is None:
                    continue
                motion = Motion.from_state(tf.state, valid=tf.has_face)
                reference = reference or motion
                result = animator.animate(motion, reference)
                out_crop = warp_to_crop(result.image, crop)
                gt_crop = warp_to_crop(vf.image, crop)
                psnr.append(metrics.psnr(out_crop, gt_crop))
                ssim.append(metrics.ssim(out_crop, gt_crop))
                l1.append(metrics.l1(out_crop, gt_crop))
                mo, mg = measurer.measure(out_crop), measurer.measure(gt_crop)
                missing += int(not mo.found)
                out_m.append(mo)
                gt_m.append(mg)
                if mo.foreground is not None and mg.foreground is not None:
                    bg_out.update(out_crop, mo.foreground)
                    bg_gt.update(gt_crop, mg.foreground)
                if len(sheet) < settings.sheet_frames and n_eval % max(1, (settings.limit or 40) // 4) == 0:
                    sheet.append([animator.source.crop_image, gt_crop, out_crop])
                n_eval += 1
                if progress:
                    progress(1)
    finally:
        if own:
            measurer.close()
    values = {
        "psnr": float(np.mean(psnr)) if psnr else float("nan"),
        "ssim": float(np.mean(ssim)) if ssim else float("nan"),
        "l1": float(np.mean(l1)) if l1 else float("nan"),
        **(_aggregate_landmark_metrics(out_m, gt_m) if out_m else {}),
        "background": bg_out.value(),
        "background_gt": bg_gt.value(),
    }
    return ClipResult(Path(clip).name, renderer, values, n_eval, missing, sheet)


def _chain(first, rest):
    yield first
    yield from rest
