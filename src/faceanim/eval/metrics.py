"""Pure numpy metrics for talking-head reenactment (LivePortrait / MobilePortrait / MODA style).

Conventions: images are ``HxWx3`` uint8 RGB; landmark sequences are float arrays ``(T, N, 2|3)`` in
pixels where a frame without a face is all-NaN; angles are degrees.  Sequence metrics skip frames that
contain a NaN (in prediction *or* ground truth) and return ``nan`` when nothing valid is left, so a
missing face never silently turns into a zero error.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import structural_similarity

__all__ = [
    "BackgroundAccumulator",
    "aed",
    "akd",
    "apd",
    "audio_envelope",
    "av_offset",
    "background_consistency",
    "box_around",
    "diversity",
    "erode",
    "l1",
    "laplacian_variance",
    "lmd",
    "lmd_v",
    "mouth_audio_correlation",
    "pearson",
    "psnr",
    "ratio_error",
    "sharpness_ratio",
    "ssim",
    "summarize",
    "temporal_jitter",
]

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------------- helpers


def _pair_images(pred: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"image shapes differ: {p.shape} vs {t.shape}")
    return p, t


def _pair_seq(pred: ArrayLike, gt: ArrayLike, name: str) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"{name}: shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _valid_frames(*arrays: FloatArray) -> NDArray[np.bool_]:
    """True for frames (axis 0) whose entries are all finite in every array."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return ok


def _is_constant(v: FloatArray) -> bool:
    """True if a finite 1D array has no variation beyond float round-off."""
    return bool(np.ptp(v) <= 1e-12 * max(1.0, float(np.abs(v).max())))


def _mean_or_nan(x: FloatArray) -> float:
    return float(x.mean()) if x.size else float("nan")


# ---------------------------------------------------------------------------------------------- images


def _mask_for(mask: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image {tuple(shape[:2])}")
    return m


def erode(mask: ArrayLike, radius: int) -> NDArray[np.bool_]:
    """Pixels whose whole ``(2·radius+1)``² window lies inside ``mask`` (the image border counts as outside)."""
    m = np.asarray(mask, dtype=np.uint8)
    if radius <= 0:
        return m.astype(bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def psnr(pred: ArrayLike, target: ArrayLike, cap: float = 100.0, mask: ArrayLike | None = None) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images (peak 255), over the ``mask`` pixels if given.

    PSNR is +inf for identical images; it is clamped to ``cap`` (default 100 dB) so that averages over a
    dataset stay finite and identical frames score exactly ``cap``. An empty mask gives nan.
    """
    p, t = _pair_images(pred, target)
    m = _mask_for(mask, p.shape)
    d = (p - t) if m is None else (p - t)[m]
    if d.size == 0:
        return float("nan")
    mse = float(np.mean(d**2))
    if mse == 0.0:
        return float(cap)
    return float(min(cap, 10.0 * np.log10(255.0**2 / mse)))


SSIM_WINDOW = 7  # skimage's default Gaussian-free 7×7 window


def ssim(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Structural similarity of two RGB uint8 images (skimage, per-channel mean, data_range=255).

    With ``mask``, the SSIM map is averaged over the pixels whose whole 7×7 window lies inside the mask, so
    padding outside it never enters a window; an all-true mask gives the plain SSIM. Too small a mask: nan.
    """
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"image shapes differ: {p.shape} vs {t.shape}")
    m = _mask_for(mask, p.shape)
    if min(p.shape[:2]) < SSIM_WINDOW:
        return float("nan")
    if m is None:
        return float(structural_similarity(p, t, channel_axis=-1, data_range=255, win_size=SSIM_WINDOW))
    inner = erode(m, SSIM_WINDOW // 2)
    if not inner.any():
        return float("nan")
    _, full = structural_similarity(p, t, channel_axis=-1, data_range=255, win_size=SSIM_WINDOW, full=True)
    return float(full[inner].mean())


def l1(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute pixel difference scaled to [0, 1] (divided by 255), over the ``mask`` pixels if given."""
    p, t = _pair_images(pred, target)
    m = _mask_for(mask, p.shape)
    d = np.abs(p - t) if m is None else np.abs(p - t)[m]
    return float(d.mean() / 255.0) if d.size else float("nan")


def laplacian_variance(image: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Variance of the grey image's 3×3 Laplacian (a focus measure), over pixels whose 3×3 window is in ``mask``."""
    a = np.asarray(image)
    grey = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a
    lap = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=1)
    inner = erode(np.ones(grey.shape, bool) if mask is None else _mask_for(mask, grey.shape), 1)
    return float(lap[inner].var()) if inner.sum() > 1 else float("nan")


def sharpness_ratio(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Laplacian variance of ``pred`` over ``target``'s: < 1 = blurrier than the ground truth, > 1 = sharper."""
    vp, vt = laplacian_variance(pred, mask), laplacian_variance(target, mask)
    return vp / vt if vt > 0 else float("nan")


def box_around(points: ArrayLike, scale: float, shape: tuple[int, ...], min_side: int = 16) -> tuple[slice, slice]:
    """A square (rows, cols) around ``points`` (N, 2) in x, y: side = ``scale`` × their larger extent, clipped
    to an image of ``shape``; empty slices when the points are not finite."""
    pts = np.asarray(points, dtype=np.float64)[..., :2]
    if not np.isfinite(pts).all() or pts.size == 0:
        return slice(0, 0), slice(0, 0)
    lo, hi = pts.min(0), pts.max(0)
    c = 0.5 * (lo + hi)
    half = 0.5 * max(scale * float((hi - lo).max()), float(min_side))
    h, w = shape[:2]
    x0, x1 = int(np.clip(round(c[0] - half), 0, w)), int(np.clip(round(c[0] + half), 0, w))
    y0, y1 = int(np.clip(round(c[1] - half), 0, h)), int(np.clip(round(c[1] + half), 0, h))
    return slice(y0, y1), slice(x0, x1)


# ---------------------------------------------------------------------------- landmarks, pose, expression


def akd(pred_lms: ArrayLike, gt_lms: ArrayLike) -> float:
    """Average keypoint distance: mean 2D Euclidean distance (pixels) over valid frames and points.

    Uses ``[..., :2]`` so 3D landmarks are compared in the image plane.  Frames with any NaN in either
    sequence (missing face) are skipped.
    """
    p, g = _pair_seq(pred_lms, gt_lms, "akd")
    p, g = p[..., :2].reshape(-1, p.shape[-2], 2), g[..., :2].reshape(-1, g.shape[-2], 2)
    ok = _valid_frames(p, g)
    return _mean_or_nan(np.linalg.norm(p[ok] - g[ok], axis=-1))


def _wrap_deg(d: FloatArray) -> FloatArray:
    """Wrap angle differences to [-180, 180)."""
    return (d + 180.0) % 360.0 - 180.0


def apd(pred_angles: ArrayLike, gt_angles: ArrayLike) -> float:
    """Average pose distance: mean absolute yaw/pitch/roll error in degrees over ``(T, 3)`` arrays.

    Differences are wrapped to [-180, 180) so 179 vs -179 counts as 2 degrees.  NaN frames are skipped.
    """
    p, g = _pair_seq(pred_angles, gt_angles, "apd")
    p, g = p.reshape(-1, 3), g.reshape(-1, 3)
    ok = _valid_frames(p, g)
    return _mean_or_nan(np.abs(_wrap_deg(p[ok] - g[ok])))


def aed(
    pred_expr: ArrayLike,
    gt_expr: ArrayLike,
    left_eye_idx: Sequence[int] | ArrayLike,
    right_eye_idx: Sequence[int] | ArrayLike,
) -> float:
    """Average expression distance on canonical-space landmarks ``(T, N, 3)``.

    Per frame: mean over landmarks of the L1 distance (sum of absolute coordinate differences), divided
    by the ground-truth inter-ocular distance (eye centre = mean of the given index lists).  The
    normalisation makes it invariant to the scale of the canonical space.  Frames with NaN or a
    degenerate inter-ocular distance are skipped.
    """
    p, g = _pair_seq(pred_expr, gt_expr, "aed")
    li = np.asarray(left_eye_idx, dtype=np.intp).ravel()
    ri = np.asarray(right_eye_idx, dtype=np.intp).ravel()
    iod = np.linalg.norm(g[:, li].mean(axis=1) - g[:, ri].mean(axis=1), axis=-1)
    per_frame = np.abs(p - g).sum(axis=-1).mean(axis=-1)
    ok = _valid_frames(p, g) & (iod > 1e-12)
    return _mean_or_nan(per_frame[ok] / iod[ok])


def ratio_error(pred: ArrayLike, gt: ArrayLike) -> float:
    """Mean absolute error of per-frame scalar ratios (eye/mouth openness), NaN frames skipped."""
    p, g = _pair_seq(pred, gt, "ratio_error")
    p, g = p.ravel(), g.ravel()
    ok = np.isfinite(p) & np.isfinite(g)
    return _mean_or_nan(np.abs(p[ok] - g[ok]))


def pearson(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation over pairs where both values are finite; nan if either side is constant."""
    x, y = _pair_seq(a, b, "pearson")
    x, y = x.ravel(), y.ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    x, y = x[ok], y[ok]
    if _is_constant(x) or _is_constant(y):
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    den = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return float(np.clip(np.sum(x * y) / den, -1.0, 1.0))


# ------------------------------------------------------------------------------------------ background


class BackgroundAccumulator:
    """Streaming background-consistency (MobilePortrait BCI-style) so long videos need not fit in memory.

    The first frame is the reference.  For every later frame t the mean absolute difference (0–255 scale,
    averaged over channels) to the reference is taken over pixels that are background (mask < 0.5) in both
    frame t and frame 0; ``value()`` is the mean of these per-frame values.  Masks are ``HxW`` (or
    ``HxWx1``) foreground probabilities in [0, 1] or bool; uint8 masks are read as 0–255.
    """

    def __init__(self) -> None:
        self._ref: FloatArray | None = None
        self._ref_bg: NDArray[np.bool_] | None = None
        self._sum = 0.0
        self._count = 0

    @staticmethod
    def _background(mask: ArrayLike, shape: tuple[int, int]) -> NDArray[np.bool_]:
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        if m.shape != shape:
            raise ValueError(f"mask shape {m.shape} does not match frame {shape}")
        fg = m.astype(np.float64) / 255.0 if m.dtype == np.uint8 else m.astype(np.float64)
        return fg < 0.5

    def update(self, frame: ArrayLike, mask: ArrayLike) -> None:
        """Add one frame and its foreground mask."""
        f = np.asarray(frame, dtype=np.float64)
        if f.ndim == 2:
            f = f[..., None]
        bg = self._background(mask, f.shape[:2])
        if self._ref is None or self._ref_bg is None:
            self._ref, self._ref_bg = f, bg
            return
        if f.shape != self._ref.shape:
            raise ValueError(f"frame shape {f.shape} differs from first frame {self._ref.shape}")
        both = bg & self._ref_bg
        if not both.any():  # no shared background: nothing to measure in this frame
            return
        self._sum += float(np.abs(f[both] - self._ref[both]).mean())
        self._count += 1

    def value(self) -> float:
        """Mean per-frame background difference (lower = steadier); nan until a second usable frame."""
        return self._sum / self._count if self._count else float("nan")


def background_consistency(
    frames: Sequence[np.ndarray] | np.ndarray, fg_masks: Sequence[np.ndarray] | np.ndarray
) -> float:
    """Background consistency of a generated video versus its first frame (see ``BackgroundAccumulator``)."""
    if len(frames) != len(fg_masks):
        raise ValueError(f"{len(frames)} frames but {len(fg_masks)} masks")
    acc = BackgroundAccumulator()
    for frame, mask in zip(frames, fg_masks, strict=True):
        acc.update(frame, mask)
    return acc.value()


# ------------------------------------------------------------------------------------------- temporal


def _mean_accel(x: FloatArray, ok: NDArray[np.bool_]) -> float:
    acc = x[2:] - 2.0 * x[1:-1] + x[:-2]
    return _mean_or_nan(np.linalg.norm(acc[ok], axis=-1))


def temporal_jitter(pred_lms: ArrayLike, gt_lms: ArrayLike) -> dict[str, float]:
    """Landmark jitter: mean norm of the second difference (acceleration, px/frame²) of each sequence.

    Returns ``{"pred", "gt", "ratio"}`` with ``ratio = pred / gt`` (1 = as steady as ground truth, > 1 =
    shakier).  Accelerations touching a NaN frame in either sequence are skipped, so a missing face breaks
    the sequence instead of creating a spike.  If ``gt`` is 0 the ratio is 1 when ``pred`` is 0 too,
    else inf.
    """
    p, g = _pair_seq(pred_lms, gt_lms, "temporal_jitter")
    p, g = p[..., :2], g[..., :2]
    if p.shape[0] < 3:
        nan = float("nan")
        return {"pred": nan, "gt": nan, "ratio": nan}
    fin = _valid_frames(p, g)
    ok = fin[2:] & fin[1:-1] & fin[:-2]
    jp, jg = _mean_accel(p, ok), _mean_accel(g, ok)
    if np.isnan(jp) or np.isnan(jg):
        ratio = float("nan")
    elif jg > 0.0:
        ratio = jp / jg
    else:
        ratio = 1.0 if jp == 0.0 else float("inf")
    return {"pred": jp, "gt": jg, "ratio": ratio}


def lmd(pred_mouth: ArrayLike, gt_mouth: ArrayLike) -> float:
    """Landmark distance: mean Euclidean distance of mouth landmarks ``(T, M, 2)``, NaN frames skipped."""
    p, g = _pair_seq(pred_mouth, gt_mouth, "lmd")
    p, g = p[..., :2], g[..., :2]
    ok = _valid_frames(p, g)
    return _mean_or_nan(np.linalg.norm(p[ok] - g[ok], axis=-1))


def lmd_v(pred_mouth: ArrayLike, gt_mouth: ArrayLike) -> float:
    """Velocity landmark distance: LMD on frame-to-frame landmark velocities (blind to constant offsets)."""
    p, g = _pair_seq(pred_mouth, gt_mouth, "lmd_v")
    p, g = p[..., :2], g[..., :2]
    fin = _valid_frames(p, g)
    ok = fin[1:] & fin[:-1]
    dv = np.diff(p, axis=0)[ok] - np.diff(g, axis=0)[ok]
    return _mean_or_nan(np.linalg.norm(dv, axis=-1))


# ---------------------------------------------------------------------------------------- audio-visual


def mouth_audio_correlation(mouth_open: ArrayLike, audio_envelope: ArrayLike) -> float:
    """Pearson correlation between per-frame mouth opening and audio envelope (zero lag)."""
    return pearson(mouth_open, audio_envelope)


def _zscore(x: FloatArray) -> tuple[FloatArray, FloatArray] | None:
    """Z-score over finite entries; non-finite entries become 0 with weight 0.  None if constant."""
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return None
    if _is_constant(x[ok]):
        return None
    mu, sd = x[ok].mean(), x[ok].std()
    return np.where(ok, (np.where(ok, x, mu) - mu) / sd, 0.0), ok.astype(np.float64)


def av_offset(mouth_open: ArrayLike, audio_envelope: ArrayLike, max_lag: int = 15) -> int:
    """Audio-visual offset in frames: the lag of peak normalised cross-correlation in [-max_lag, max_lag].

    Sign convention: lag ``k`` pairs ``mouth[t]`` with ``audio[t - k]``; the result is the ``k`` that
    maximises their correlation.  Positive = the mouth *lags* the audio (``mouth[t] ≈ audio[t - k]``, the
    lips move k frames after the sound); negative = the mouth leads.  Both signals are z-scored and each
    lag's correlation is divided by its number of overlapping valid frames (NaN frames are ignored).
    Lags are limited to leave at least two overlapping frames.  Returns 0 if either signal is constant.
    """
    m, a = _pair_seq(mouth_open, audio_envelope, "av_offset")
    m, a = m.ravel(), a.ravel()
    zm, za = _zscore(m), _zscore(a)
    if zm is None or za is None:
        return 0
    (xm, wm), (xa, wa) = zm, za
    n = m.size
    # np.correlate(u, v, "full")[n - 1 + k] = sum_t u[t + k] * v[t]  -> mouth at t+k with audio at t.
    num = np.correlate(xm, xa, mode="full")
    cnt = np.correlate(wm, wa, mode="full")
    lags = np.arange(-(n - 1), n)
    keep = (np.abs(lags) <= max(0, int(max_lag))) & (cnt >= 2)
    if not keep.any():
        return 0
    score = np.full(lags.shape, -np.inf)
    score[keep] = num[keep] / cnt[keep]
    best = score.max()
    cand = lags[score >= best - 1e-12]
    return int(cand[np.argmin(np.abs(cand))])  # ties -> smallest |lag|


def audio_envelope(samples: ArrayLike, sample_rate: float, fps: float, n_frames: int) -> FloatArray:
    """RMS of the audio in each video frame window; frame i covers [i/fps, (i+1)/fps).

    ``samples`` is ``(S,)`` or ``(S, channels)`` (channels are averaged); the result ``(n_frames,)`` is in
    the units of ``samples``.  Windows past the end of the audio are 0.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x.ravel()
    # First sample index with time >= i / fps; the tiny epsilon guards against float round-up.
    bounds = np.ceil(np.arange(n_frames + 1) * (float(sample_rate) / float(fps)) - 1e-9).astype(np.int64)
    bounds = np.clip(bounds, 0, x.size)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    energy = csum[bounds[1:]] - csum[bounds[:-1]]
    count = np.diff(bounds)
    out = np.zeros(n_frames, dtype=np.float64)
    has = count > 0
    out[has] = np.sqrt(np.maximum(energy[has], 0.0) / count[has])
    return out


# ---------------------------------------------------------------------------------- diversity, summary


def diversity(samples: ArrayLike) -> float:
    """Sampling diversity: variance across S seeds, averaged over time and feature dims (``(S, T, D)``)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim < 2 or s.shape[0] < 2:
        raise ValueError(f"need (S>=2, T, D) samples, got shape {s.shape}")
    var = np.var(s - s[:1], axis=0)  # shift-invariant; identical samples give exactly 0
    var = var[np.isfinite(var)]
    return _mean_or_nan(var)


def summarize(values: Sequence[float] | ArrayLike) -> dict[str, float]:
    """Mean/median/std (population)/min/max over the finite values only.

    NaN (missing measurement) and ±inf (degenerate ratio) are both excluded from the statistics and
    counted in ``n_invalid``; ``n`` is the number of finite values.  Stats are nan when none are finite.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    fin = v[np.isfinite(v)]
    out: dict[str, float] = {"n": int(fin.size), "n_invalid": int(v.size - fin.size)}
    if fin.size == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "std": nan, "min": nan, "max": nan, **out}
    return {
        "mean": float(fin.mean()),
        "median": float(np.median(fin)),
        "std": float(fin.std()),
        "min": float(fin.min()),
        "max": float(fin.max()),
        **out,
    }
