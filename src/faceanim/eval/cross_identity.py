"""Cross-identity reenactment: each portrait driven by each clip of another set.

Without ground truth, the output is compared with the *driver's motion*: pose and expression changes
relative to the first frame (APD, AED on deltas), eye/lip ratio correlation with the driver, and
background steadiness. Identity similarity (CSIM) needs a face-embedding model, which no dependency
ships offline, so it is reported as not measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceanim.eval import metrics
from faceanim.eval.measure import FrameMeasurer
from faceanim.eval.same_identity import EVAL_CROP, EYE_IDX, ClipResult, EvalSettings
from faceanim.face.crop import CropConfig, warp_to_crop
from faceanim.face.geometry import euler_from_rotation
from faceanim.face.model import load_face_model
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image
from faceanim.media.video import iter_video
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig


def _relative_angles(rotations: np.ndarray) -> np.ndarray:
    ref = rotations[0]
    out = []
    for r in rotations:
        out.append(euler_from_rotation(ref.T @ r) if np.isfinite(r).all() else (np.nan,) * 3)
    return np.array(out)


def evaluate_pair(
    portrait: str | Path,
    clip: str | Path,
    renderer: str,
    settings: EvalSettings = EvalSettings(),
    measurer: FrameMeasurer | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClipResult:
    own = measurer is None
    measurer = measurer or FrameMeasurer()
    config = AnimatorConfig(renderer=renderer, crop=CropConfig(size=EVAL_CROP))
    animator = Animator.prepare(read_image(portrait), config, path=str(portrait))
    crop = animator.source.crop
    drv_rot, drv_exp, drv_eye, drv_lip = [], [], [], []
    out_m = []
    bg = metrics.BackgroundAccumulator()
    reference: Motion | None = None
    sheet: list[list[np.ndarray]] = []
    n = 0
    try:
        with FaceTracker(TrackerConfig(smoothing=0.5)) as tracker:
            for vf in iter_video(clip, every=settings.every):
                if settings.limit is not None and n >= settings.limit:
                    break
                tf = tracker.update(vf.image, vf.index, vf.time)
                if tf.state is None or not tf.has_face:
                    continue
                motion = Motion.from_state(tf.state)
                reference = reference or motion
                out = warp_to_crop(animator.animate(motion, reference).image, crop)
                m = measurer.measure(out)
                out_m.append(m)
                if m.foreground is not None:
                    bg.update(out, m.foreground)
                drv_rot.append(motion.rotation)
                drv_exp.append(motion.expression)
                drv_eye.append(motion.eye_open.mean())
                drv_lip.append(motion.lip_open)
                if len(sheet) < settings.sheet_frames and n % max(1, (settings.limit or 40) // 4) == 0:
                    small = tf.state.landmarks[:, :2]
                    lo, hi = small.min(0), small.max(0)
                    c, s = 0.5 * (lo + hi), 1.2 * float((hi - lo).max())
                    y0, x0 = int(max(c[1] - s, 0)), int(max(c[0] - s, 0))
                    sheet.append([animator.source.crop_image, vf.image[y0 : int(c[1] + s), x0 : int(c[0] + s)], out])
                n += 1
                if progress:
                    progress(1)
    finally:
        if own:
            measurer.close()
    if not out_m:
        return ClipResult(f"{Path(portrait).name}×{Path(clip).name}", renderer, {}, 0, 0, sheet)
    out_rot = np.stack([m.rotation for m in out_m])
    out_exp = np.stack([m.expression for m in out_m])
    drv_exp_a = np.stack(drv_exp)
    out_eye = np.stack([m.eye_open for m in out_m]).mean(1)
    out_lip = np.array([m.lip_open for m in out_m])
    first = next((i for i, m in enumerate(out_m) if m.found), 0)
    can = load_face_model().canonical
    values = {
        "apd_rel": metrics.apd(_relative_angles(out_rot[first:]), _relative_angles(np.stack(drv_rot)[first:])),
        # deltas from the first frame, placed on the canonical face so the inter-ocular normalisation is defined
        "aed_rel": metrics.aed(out_exp - out_exp[first] + can, drv_exp_a - drv_exp_a[first] + can, *EYE_IDX),
        "eye_corr": metrics.pearson(out_eye, np.array(drv_eye)),
        "lip_corr": metrics.pearson(out_lip, np.array(drv_lip)),
        "background": bg.value(),
        "csim": float("nan"),  # not measured: no offline face-embedding model
    }
    missing = sum(not m.found for m in out_m)
    return ClipResult(f"{Path(portrait).name}×{Path(clip).name}", renderer, values, n, missing, sheet)
