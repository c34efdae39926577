"""Cross-identity reenactment: each portrait driven by each clip of another set.

Without ground truth, the output is compared with the *driver's motion*, both re-measured from scratch:
pose and expression changes relative to the first frame (APD, AED on deltas), eye/lip ratio correlation
with the driver, and background steadiness. Identity similarity (CSIM) compares the output with the source
portrait (dlib's face embedding, when the ``[eval]`` extra is installed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceanim.eval import metrics
from faceanim.eval.frames import EvalSettings, every_kth, session_frames
from faceanim.eval.identity import SAME_PERSON_DISTANCE, similarity
from faceanim.eval.measure import FrameMeasure, FrameMeasurer
from faceanim.eval.same_identity import EVAL_CROP, EYE_IDX, ClipResult
from faceanim.face.crop import CropConfig, warp_to_crop
from faceanim.face.geometry import euler_from_rotation
from faceanim.face.model import load_face_model
from faceanim.media.image import read_image
from faceanim.media.video import VideoFrame, iter_video
from faceanim.pipeline.animator import Animator, AnimatorConfig


def _relative_angles(rotations: np.ndarray) -> np.ndarray:
    ref = rotations[0]
    out = []
    for r in rotations:
        out.append(euler_from_rotation(ref.T @ r) if np.isfinite(r).all() and np.isfinite(ref).all()
                   else (np.nan,) * 3)
    return np.array(out)


def _face_thumb(image: np.ndarray, landmarks: np.ndarray, size: int = 160) -> np.ndarray | None:
    """A small copy of the square around a face (for the contact sheet; never a view of the frame)."""
    rows, cols = metrics.box_around(landmarks, 2.4, image.shape)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return None
    region = image[rows, cols]
    scale = size / max(region.shape[:2])
    step = max(1, int(1 / scale))
    return region[::step, ::step].copy()


def pair_name(portrait: str | Path, clip: str | Path) -> str:
    return f"{Path(portrait).name}×{Path(clip).name}"


def evaluate_pair(
    portrait: str | Path,
    clip: str | Path,
    renderer: str,
    settings: EvalSettings = EvalSettings(),
    measurer: FrameMeasurer | None = None,
    progress: Callable[[int], None] | None = None,
) -> ClipResult:
    """Drive ``portrait`` with ``clip`` through a session and score the output against the driver's motion."""
    own = measurer is None
    measurer = measurer or FrameMeasurer()
    config = AnimatorConfig(renderer=renderer, crop=CropConfig(size=EVAL_CROP))
    animator = Animator.prepare(read_image(portrait), config, path=str(portrait))
    crop = animator.source.crop
    csim_every = every_kth(settings.limit, settings.csim_frames)
    sheet_every = every_kth(settings.limit, settings.sheet_frames)
    drv_m: list[FrameMeasure] = []
    out_m: list[FrameMeasure] = []
    csim: list[float] = []
    dist: list[float] = []
    bg = metrics.BackgroundAccumulator()
    sheet: list[list[np.ndarray]] = []
    n = 0
    want_sheet = settings.sheet_frames > 0

    def keep(vf: VideoFrame) -> tuple[FrameMeasure, np.ndarray | None]:
        m = measurer.measure(vf.image, foreground=False, key=(str(clip), vf.index))
        thumb = _face_thumb(vf.image, m.landmarks[:, :2]) if want_sheet and m.found else None
        return m, thumb

    try:
        src_m = measurer.measure(animator.source.crop_image, foreground=False, embed=True,
                                 key=(str(portrait), "source"))
        for (dm, thumb), frame in session_frames(animator, iter_video(clip), settings, keep):
            out = warp_to_crop(frame.image, crop)
            embed = n % csim_every == 0
            m = measurer.measure(out, embed=embed)
            if m.foreground is not None:
                bg.update(out, m.foreground)
            if embed and measurer.embedder is not None:
                cos, d = similarity(m.embedding, src_m.embedding)
                csim.append(cos)
                dist.append(d)
            out_m.append(replace(m, foreground=None, embedding=None))
            drv_m.append(dm)
            if want_sheet and len(sheet) < settings.sheet_frames and n % sheet_every == 0:
                sheet.append([animator.source.crop_image, thumb, out])
            n += 1
            if progress:
                progress(1)
    finally:
        if own:
            measurer.close()
    name = pair_name(portrait, clip)
    if not out_m:
        return ClipResult(name, renderer, {}, 0, 0, sheet)
    out_exp = np.stack([m.expression for m in out_m])
    drv_exp = np.stack([m.expression for m in drv_m])
    first = next((i for i, (o, d) in enumerate(zip(out_m, drv_m, strict=True)) if o.found and d.found), 0)
    can = load_face_model().canonical
    fin = [d for d in dist if np.isfinite(d)]
    values = {
        "apd_rel": metrics.apd(_relative_angles(np.stack([m.rotation for m in out_m])[first:]),
                               _relative_angles(np.stack([m.rotation for m in drv_m])[first:])),
        # deltas from the first frame, placed on the canonical face so the inter-ocular normalisation is defined
        "aed_rel": metrics.aed(out_exp - out_exp[first] + can, drv_exp - drv_exp[first] + can, *EYE_IDX),
        "eye_corr": metrics.pearson(np.stack([m.eye_open for m in out_m]).mean(1),
                                    np.stack([m.eye_open for m in drv_m]).mean(1)),
        "lip_corr": metrics.pearson(np.array([m.lip_open for m in out_m]), np.array([m.lip_open for m in drv_m])),
        "background": bg.value(),
        "csim": float(np.mean([c for c in csim if np.isfinite(c)])) if any(np.isfinite(csim)) else float("nan"),
        "csim_distance": float(np.mean(fin)) if fin else float("nan"),
        "csim_same_person": float(np.mean([d < SAME_PERSON_DISTANCE for d in fin])) if fin else float("nan"),
        "missing_driver_faces": float(sum(not d.found for d in drv_m)),
    }
    missing = sum(not m.found for m in out_m)
    return ClipResult(name, renderer, values, n, missing, sheet)
