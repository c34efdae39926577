"""Tests for faceanim.eval.metrics: each case checks a known value or a direction of change."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceanim.eval import metrics as M


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def image(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def _walk(rng: np.random.Generator, t: int = 60, n: int = 10) -> np.ndarray:
    """Smooth-ish random landmark trajectories (T, N, 2) in pixels."""
    return 100.0 + np.cumsum(rng.normal(0.0, 1.0, size=(t, n, 2)), axis=0)


# ----------------------------------------------------------------------------------------------- images


def test_identical_images(image: np.ndarray) -> None:
    assert M.psnr(image, image) == 100.0
    assert M.psnr(image, image, cap=60.0) == 60.0
    assert M.ssim(image, image) == pytest.approx(1.0)
    assert M.l1(image, image) == 0.0


def test_psnr_decreases_with_noise(image: np.ndarray, rng: np.random.Generator) -> None:
    vals = []
    for sigma in (2.0, 8.0, 32.0):
        noisy = np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)
        vals.append(M.psnr(noisy, image))
    assert vals[0] > vals[1] > vals[2]
    assert vals[0] < 100.0


def test_l1_and_ssim_known() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 51, np.uint8)
    assert M.l1(a, b) == pytest.approx(0.2)
    assert M.psnr(a, b) == pytest.approx(20 * math.log10(255 / 51))
    assert M.ssim(a, b) < 0.99


def test_masked_scores_ignore_black_padding(rng: np.random.Generator) -> None:
    """A crop padded with black beyond the image edge: the padding matches trivially and must not count."""
    gt = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    out = np.clip(gt + rng.normal(0, 20, gt.shape), 0, 255).astype(np.uint8)
    gt[:, 20:] = 0
    out[:, 20:] = 0  # both padded: identical there
    inside = np.zeros((40, 40), bool)
    inside[:, :20] = True
    assert M.psnr(out, gt, mask=inside) < M.psnr(out, gt) - 2.5  # half the pixels were free wins
    assert M.psnr(out, gt, mask=inside) == pytest.approx(M.psnr(out[:, :20], gt[:, :20]))
    assert M.l1(out, gt, mask=inside) == pytest.approx(2 * M.l1(out, gt))
    assert M.ssim(out, gt, mask=inside) < M.ssim(out, gt)
    assert math.isnan(M.psnr(out, gt, mask=np.zeros((40, 40), bool)))


def test_ssim_with_a_full_mask_is_plain_ssim(image: np.ndarray, rng: np.random.Generator) -> None:
    noisy = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    assert M.ssim(noisy, image, mask=np.ones(image.shape[:2], bool)) == pytest.approx(M.ssim(noisy, image))


def test_sharpness_ratio_shows_blur(image: np.ndarray) -> None:
    import cv2

    blurred = cv2.GaussianBlur(image, (5, 5), 1.5)
    assert M.sharpness_ratio(blurred, image) < 0.3
    assert M.sharpness_ratio(image, blurred) > 3.0
    assert M.sharpness_ratio(image, image) == pytest.approx(1.0)
    # a blurred output gains PSNR over a sharp but slightly shifted one; sharpness tells them apart
    shifted = np.roll(image, 1, axis=1)
    assert M.psnr(blurred, image) > M.psnr(shifted, image)
    assert M.sharpness_ratio(shifted, image) == pytest.approx(1.0, rel=0.1)


def test_box_around_is_square_and_clipped() -> None:
    pts = np.array([[10.0, 20.0], [30.0, 24.0]])
    rows, cols = M.box_around(pts, 1.5, (100, 100))
    assert (rows.stop - rows.start, cols.stop - cols.start) == (30, 30)
    assert (rows.start + rows.stop) / 2 == pytest.approx(22, abs=1) and (cols.start + cols.stop) / 2 == 20
    rows, cols = M.box_around(pts - 15, 1.5, (100, 100))
    assert rows.start == 0 and cols.start == 0
    rows, cols = M.box_around(np.full((3, 2), np.nan), 1.5, (100, 100))
    assert rows.stop == rows.start


# ------------------------------------------------------------------------------------------- landmarks


def test_akd_zero_and_known_shift(rng: np.random.Generator) -> None:
    gt = _walk(rng)
    assert M.akd(gt, gt) == 0.0
    assert M.akd(gt + np.array([3.0, 4.0]), gt) == pytest.approx(5.0)


def test_akd_uses_xy_and_skips_nan(rng: np.random.Generator) -> None:
    gt = np.concatenate([_walk(rng), rng.normal(size=(60, 10, 1))], axis=-1)
    pred = gt + np.array([3.0, 4.0, 50.0])
    pred[5] = np.nan
    gt[7, 2] = np.nan
    assert M.akd(pred, gt) == pytest.approx(5.0)
    assert math.isnan(M.akd(np.full((2, 3, 2), np.nan), np.zeros((2, 3, 2))))


def test_apd_known_and_wrap() -> None:
    gt = np.array([[10.0, 0.0, 0.0], [179.0, 0.0, 0.0]])
    pred = np.array([[13.0, 3.0, -3.0], [-179.0, 0.0, 0.0]])
    assert M.apd(pred, gt) == pytest.approx((3 + 3 + 3 + 2) / 6)
    assert M.apd(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]])) == pytest.approx(2.0 / 3)
    assert M.apd(np.array([[-179.0, 0, 0]]), np.array([[179.0, 0, 0]])) == pytest.approx(2.0 / 3)
    assert M.apd(gt, gt) == 0.0


def test_aed_scale_invariant_and_known(rng: np.random.Generator) -> None:
    gt = rng.normal(size=(20, 12, 3))
    gt[:, 0] = [-1.0, 0.0, 0.0]
    gt[:, 1] = [1.0, 0.0, 0.0]  # left/right eye centres 2 apart
    pred = gt + rng.normal(0.0, 0.1, gt.shape)
    base = M.aed(pred, gt, [0], [1])
    assert base > 0
    assert M.aed(2 * pred, 2 * gt, [0], [1]) == pytest.approx(base)
    assert M.aed(gt, gt, [0], [1]) == 0.0
    shifted = gt + np.array([0.1, 0.2, 0.3])  # L1 0.6 per point, iod 2
    assert M.aed(shifted, gt, [0], [1]) == pytest.approx(0.3)
    shifted[3] = np.nan
    assert M.aed(shifted, gt, [0], [1]) == pytest.approx(0.3)


def test_ratio_error_and_pearson() -> None:
    a = np.array([0.1, 0.2, np.nan, 0.4])
    b = np.array([0.2, 0.2, 0.3, 0.2])
    assert M.ratio_error(a, b) == pytest.approx((0.1 + 0.0 + 0.2) / 3)
    x = np.arange(10.0)
    assert M.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert M.pearson(x, -x) == pytest.approx(-1.0)
    assert math.isnan(M.pearson(x, np.full(10, 0.3)))
    y = 3 * x
    y[4] = np.nan
    assert M.pearson(x, y) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ background


def _scene(rng: np.random.Generator, t: int = 6) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    bg = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    masks = []
    frames = []
    for i in range(t):
        m = np.zeros((40, 50), np.float32)
        m[10 + i : 25 + i, 15:30] = 1.0  # moving foreground
        f = bg.copy()
        f[m > 0.5] = rng.integers(0, 256, size=(int((m > 0.5).sum()), 3), dtype=np.uint8)
        masks.append(m)
        frames.append(f)
    return np.stack(frames), masks, bg


def test_background_consistency(rng: np.random.Generator) -> None:
    frames, masks, _ = _scene(rng)
    assert M.background_consistency(frames, masks) == 0.0  # foreground changes ignored
    shifted = np.stack([np.roll(f, 2 * i, axis=1) for i, f in enumerate(frames)])
    assert M.background_consistency(shifted, masks) > 5.0
    acc = M.BackgroundAccumulator()
    for f, m in zip(shifted, masks, strict=True):
        acc.update(f, (m * 255).astype(np.uint8))
    assert acc.value() == pytest.approx(M.background_consistency(list(shifted), masks))


def test_background_consistency_known_offset() -> None:
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] += 10
    frames[2] += 20
    masks = np.zeros((3, 8, 8), bool)
    assert M.background_consistency(frames, masks) == pytest.approx(15.0)
    assert math.isnan(M.background_consistency(frames[:1], masks[:1]))


# ------------------------------------------------------------------------------------------- temporal


def test_temporal_jitter(rng: np.random.Generator) -> None:
    gt = _walk(rng)
    same = M.temporal_jitter(gt, gt)
    assert same["ratio"] == pytest.approx(1.0)
    assert same["pred"] == same["gt"] > 0
    noisy = M.temporal_jitter(gt + rng.normal(0.0, 1.0, gt.shape), gt)
    assert noisy["ratio"] > 1.2


def test_temporal_jitter_nan_breaks_sequence() -> None:
    t = np.arange(12.0)
    gt = np.stack([t, 2 * t], axis=-1)[:, None, :]  # constant velocity: zero acceleration
    pred = gt.copy()
    pred[6] = np.nan
    out = M.temporal_jitter(pred, gt)
    assert out["pred"] == 0.0 and out["gt"] == 0.0 and out["ratio"] == 1.0
    assert out["pred"] == 0.0  # NaN did not leak into the mean


def test_lmd_and_lmd_v(rng: np.random.Generator) -> None:
    gt = _walk(rng, n=20)
    assert M.lmd(gt, gt) == 0.0
    assert M.lmd_v(gt, gt) == 0.0
    shifted = gt + np.array([3.0, 4.0])
    assert M.lmd(shifted, gt) == pytest.approx(5.0)
    assert M.lmd_v(shifted, gt) == pytest.approx(0.0, abs=1e-9)
    step = gt.copy()
    step[1::2] += np.array([0.0, 2.0])  # alternating offset: every velocity differs by 2
    assert M.lmd_v(step, gt) == pytest.approx(2.0)


# --------------------------------------------------------------------------------------- audio-visual


def _clicks(rng: np.random.Generator, seconds: float = 8.0, sr: int = 16000) -> np.ndarray:
    audio = rng.normal(0.0, 0.002, int(seconds * sr))
    for t0 in rng.uniform(0.0, seconds - 0.05, size=25):
        i = int(t0 * sr)
        audio[i : i + 400] += np.hanning(400) * rng.uniform(0.5, 1.0)
    return audio


def test_audio_envelope_windows() -> None:
    sr, fps = 16000, 25
    audio = np.zeros(sr)  # 1 s -> 25 frames of 640 samples
    audio[640 * 3 : 640 * 4] = 2.0
    env = M.audio_envelope(audio, sr, fps, 27)
    assert env.shape == (27,)
    assert env[3] == pytest.approx(2.0)
    assert np.count_nonzero(env) == 1
    assert env[25:].tolist() == [0.0, 0.0]  # past the end of the audio
    stereo = np.stack([audio, audio], axis=1)
    np.testing.assert_allclose(M.audio_envelope(stereo, sr, fps, 27), env)


@pytest.mark.parametrize("delay", [3, -2, 0])
def test_av_offset_click_train(rng: np.random.Generator, delay: int) -> None:
    sr, fps = 16000, 25
    audio = _clicks(rng, sr=sr)
    n = int(len(audio) / sr * fps)
    env = M.audio_envelope(audio, sr, fps, n)
    mouth = np.roll(env, delay)  # mouth[t] = env[t - delay]: positive delay = mouth lags the audio
    mouth = mouth + rng.normal(0.0, 0.02 * env.std(), n)
    assert M.av_offset(mouth, env) == delay
    assert M.mouth_audio_correlation(np.roll(env, 0), env) == pytest.approx(1.0)
    if delay:
        assert M.mouth_audio_correlation(mouth, env) < 0.9


def test_av_offset_degenerate() -> None:
    assert M.av_offset(np.ones(50), np.arange(50.0)) == 0


# ---------------------------------------------------------------------------------- diversity, summary


def test_diversity(rng: np.random.Generator) -> None:
    one = rng.normal(size=(30, 4))
    assert M.diversity(np.stack([one] * 5)) == 0.0
    two = np.stack([np.zeros((30, 4)), np.full((30, 4), 2.0)])
    assert M.diversity(two) == pytest.approx(1.0)


def test_summarize() -> None:
    s = M.summarize([1.0, 2.0, 3.0, float("nan"), float("inf")])
    assert s["mean"] == 2.0 and s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 3.0
    assert s["std"] == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert s["n"] == 3 and s["n_invalid"] == 2
    assert math.isnan(M.summarize([])["mean"])
