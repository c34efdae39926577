"""Fixtures for the speech tests: audio files encoded in every common format, a tiny random network."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amp: float = 0.4) -> np.ndarray:
    """(channels, n) float32 sine with a 4 Hz syllable-like envelope."""
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return np.repeat(x[None].astype(np.float32), channels, 0)


def encode_audio(path: Path, samples: np.ndarray, rate: int, codec: str, fmt: str, container: str | None = None
                 ) -> Path:
    """Write ``samples`` (channels, n) float32 with PyAV's encoder ``codec`` in sample format ``fmt``."""
    channels = samples.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        st = out.add_stream(codec, rate=rate, layout=layout)
        st.format = fmt
        enc_rate = st.codec_context.sample_rate
        frame_size = st.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=enc_rate)
        pts = 0
        for i in range(0, samples.shape[1], frame_size):
            block = np.ascontiguousarray(samples[:, i : i + frame_size])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = pts
            pts += block.shape[1]
            for r in resampler.resample(frame):
                out.mux(st.encode(r))
        for r in resampler.resample(None):
            out.mux(st.encode(r))
        out.mux(st.encode(None))
    return path


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """``make_audio("x.mp3", "libmp3lame", "fltp", rate=44100, channels=2, seconds=1.0)``."""

    def make(name: str, codec: str, fmt: str, rate: int = 16000, channels: int = 1, seconds: float = 1.0,
             freq: float = 440.0, container: str | None = None) -> Path:
        return encode_audio(tmp_path / name, tone(seconds, rate, freq, channels), rate, codec, fmt, container)

    return make


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised, tiny audio-to-motion network exported like the real weights."""
    import torch

    from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig
    from faceanim.train.audio2motion_trainer import export_weights

    torch.manual_seed(0)
    model = Audio2Motion(Audio2MotionConfig(d_model=32, n_heads=2, ff_dim=64, lip_layers=1, vae_layers=1,
                                            latent_dim=4))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    export_weights(model, path, {"note": "random, for tests"})
    return path
