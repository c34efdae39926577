"""Log-mel features computed in the project (numpy only): 80 bins, 16 kHz, 10 ms hop, 4 per 25-fps frame.

``LogMelStream`` turns audio chunks of any size into exactly the frames :func:`log_mel` gives for the whole
signal, with bounded state, so hour-long files stream in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["LogMelStream", "MelConfig", "iter_log_mel", "log_mel", "mel_filterbank"]


@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings; ``hop`` samples per feature frame (160 at 16 kHz = 10 ms = 4 per 25-fps frame)."""

    sample_rate: int = 16000
    n_fft: int = 512
    win: int = 400  # 25 ms
    hop: int = 160  # 10 ms
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    floor: float = 1e-5
    scale: str = "htk"  # mel scale: "htk" (2595·log10(1 + f/700)) or "slaney" (linear below 1 kHz; Whisper)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop


_SLANEY_STEP = np.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray | float, scale: str = "htk") -> np.ndarray:
    f = np.asarray(f, np.float64)
    if scale == "slaney":
        return np.where(f < 1000.0, f * 3.0 / 200.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / _SLANEY_STEP)
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray, scale: str = "htk") -> np.ndarray:
    m = np.asarray(m, np.float64)
    if scale == "slaney":
        return np.where(m < 15.0, m * 200.0 / 3.0, 1000.0 * np.exp(_SLANEY_STEP * (m - 15.0)))
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(config: MelConfig = MelConfig()) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` on the HTK or Slaney scale, each of unit area."""
    n_bins = config.n_fft // 2 + 1
    freqs = np.linspace(0.0, config.sample_rate / 2.0, n_bins)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(config.fmin, config.scale), _hz_to_mel(config.fmax, config.scale),
                                   config.n_mels + 2), config.scale)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - mid, 1e-9)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= (2.0 / np.maximum(hi - lo, 1e-9))
    return fb.astype(np.float32)


@lru_cache(maxsize=8)
def _sparse_filterbank(config: MelConfig):
    from scipy import sparse

    return sparse.csr_matrix(mel_filterbank(config))


@lru_cache(maxsize=8)
def _window(config: MelConfig) -> np.ndarray:
    w = np.zeros(config.n_fft, np.float32)
    off = (config.n_fft - config.win) // 2
    w[off : off + config.win] = np.hanning(config.win + 1)[:-1]
    return w


def _frames_to_mel(frames: np.ndarray, config: MelConfig) -> np.ndarray:
    """``(N, n_fft)`` windows of samples → ``(N, n_mels)`` natural-log mel energies."""
    spec = np.fft.rfft(frames * _window(config), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = np.asarray((_sparse_filterbank(config) @ power.T).T)  # sparse: no BLAS threads fighting under load
    return np.log(np.maximum(mel, config.floor)).astype(np.float32)


def log_mel(samples: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """Log-mel ``(ceil(len / hop), n_mels)`` of mono float samples; frame i is centred at sample ``i * hop``."""
    stream = LogMelStream(config)
    parts = [stream.push(np.asarray(samples, np.float32).ravel()), stream.finish()]
    return np.concatenate(parts, axis=0)


class LogMelStream:
    """Incremental :func:`log_mel`: ``push`` chunks, then ``finish``; the concatenated outputs are identical."""

    def __init__(self, config: MelConfig = MelConfig()) -> None:
        self.config = config
        self._buf = np.zeros(config.n_fft // 2, np.float32)  # centre padding with zeros before sample 0
        self._start = -(config.n_fft // 2)  # sample index of _buf[0]
        self._next = 0  # next frame index to emit
        self._total = 0  # samples pushed

    def _emit(self, final: bool) -> np.ndarray:
        c = self.config
        half = c.n_fft // 2
        if final:
            n_frames = -(-self._total // c.hop)  # ceil
            need_end = (n_frames - 1) * c.hop + half + (c.n_fft % 2)
            pad = need_end - (self._start + self._buf.size)
            if pad > 0:
                self._buf = np.concatenate([self._buf, np.zeros(pad, np.float32)])
        else:
            n_frames = (self._start + self._buf.size - half - (c.n_fft % 2)) // c.hop + 1
        count = n_frames - self._next
        if count <= 0:
            return np.zeros((0, c.n_mels), np.float32)
        first = self._next * c.hop - half - self._start
        idx = first + np.arange(count)[:, None] * c.hop + np.arange(c.n_fft)[None]
        out = _frames_to_mel(self._buf[idx], c)
        self._next = n_frames
        drop = self._next * c.hop - half - self._start  # keep only what later frames still need
        if drop > 0:
            self._buf = self._buf[drop:]
            self._start += drop
        return out

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add samples; returns the feature frames that are now complete (possibly none)."""
        chunk = np.asarray(chunk, np.float32).ravel()
        self._total += chunk.size
        self._buf = np.concatenate([self._buf, chunk])
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        """The remaining frames (the end is zero-padded)."""
        if self._total == 0:
            return np.zeros((0, self.config.n_mels), np.float32)
        return self._emit(final=True)


def iter_log_mel(chunks: Iterable[np.ndarray], config: MelConfig = MelConfig()) -> Iterator[np.ndarray]:
    """Stream log-mel blocks from audio chunks (e.g. :func:`faceanim.media.audio.iter_audio`)."""
    stream = LogMelStream(config)
    for chunk in chunks:
        out = stream.push(chunk)
        if out.size:
            yield out
    out = stream.finish()
    if out.size:
        yield out
