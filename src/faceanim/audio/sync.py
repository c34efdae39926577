"""Audio-visual sync from signals alone: mouth opening against speech-band energy, both high-passed.

The raw RMS envelope correlates with mouth opening only weakly and its syllable rhythm (~4 Hz) makes false
peaks at ±6 frames; removing each signal's slow trend (a 9-frame moving average) and using the log energy of
the 300–3500 Hz mel bands makes the cross-correlation peak at the true lag on clean corpus clips (GRID, LRS2).
"""

from __future__ import annotations

import numpy as np

from faceanim.eval.metrics import av_offset, pearson

__all__ = ["highpass", "speech_energy", "sync_offset"]


def highpass(x: np.ndarray, width: int = 9) -> np.ndarray:
    """``x`` minus its centred moving average over ``width`` frames (edges padded)."""
    x = np.asarray(x, np.float64).ravel()
    if x.size == 0:
        return x
    pad = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return x - np.convolve(pad, np.ones(width) / width, mode="valid")


def speech_energy(mel: np.ndarray, mels_per_frame: int = 4, bands: tuple[int, int] = (10, 60)) -> np.ndarray:
    """Per-video-frame log energy of the speech mel bands, from natural-log mels ``(4·T, n_mels)``."""
    mel = np.asarray(mel, np.float64)
    t = len(mel) // mels_per_frame
    e = np.log(np.exp(mel[: t * mels_per_frame, bands[0] : bands[1]]).sum(1) + 1e-6)
    return e.reshape(t, mels_per_frame).mean(1)


def sync_offset(mouth_open: np.ndarray, energy: np.ndarray, max_lag: int = 10) -> tuple[int, float]:
    """(offset in frames, correlation at that lag); offset > 0: the mouth lags the audio."""
    m, e = highpass(mouth_open), highpass(energy)
    n = min(m.size, e.size)
    m, e = m[:n], e[:n]
    k = av_offset(m, e, max_lag=max_lag)
    lo, hi = max(k, 0), n + min(k, 0)
    corr = pearson(m[lo:hi], e[lo - k : hi - k]) if hi - lo > 2 else float("nan")
    return k, float(corr)
