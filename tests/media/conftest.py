"""Fixtures for faceanim.media tests: the shared sample-media folder and small synthetic media makers."""

from __future__ import annotations

import wave
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def _pattern_frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    x = (i * 3) % w
    img[:, x : x + 4, 2] = 255
    return img


@pytest.fixture
def pattern_frame() -> Callable[..., np.ndarray]:
    """Factory ``(i, w=64, h=48)``: a deterministic RGB frame changing with ``i`` (gradient + moving bar)."""
    return _pattern_frame


@pytest.fixture
def make_wav(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a 16-bit PCM sine WAV (identical channels), returns its path."""

    def make(
        name: str = "tone.wav",
        seconds: float = 2.0,
        rate: int = 44100,
        freq: float = 440.0,
        channels: int = 2,
        amp: float = 0.5,
    ) -> Path:
        t = np.arange(round(seconds * rate)) / rate
        mono = np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
        path = tmp_path / name
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.repeat(mono[:, None], channels, axis=1).tobytes())
        return path

    return make


@pytest.fixture
def make_raw_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a small H.264 MP4 written directly with PyAV (optional display rotation / custom pts)."""

    def make(
        name: str = "raw.mp4",
        frames: int = 10,
        w: int = 64,
        h: int = 32,
        rotation_ccw: int | None = None,
        pts: list[int] | None = None,
        time_base: Fraction = Fraction(1, 1000),
    ) -> Path:
        path = tmp_path / name
        with av.open(str(path), "w") as c:
            st = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            st.width, st.height, st.pix_fmt = w, h, "yuv420p"
            if pts is not None:
                st.codec_context.time_base = time_base
            if rotation_ccw is not None:
                st.set_display_rotation(rotation_ccw)  # PyAV >= 17 writes the display matrix side data
            for i in range(frames if pts is None else len(pts)):
                img = np.zeros((h, w, 3), np.uint8)
                img[: h // 2, : w // 4] = 255  # white marker in the top-left corner
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts = i if pts is None else pts[i]
                if pts is not None:
                    f.time_base = time_base
                c.mux(st.encode(f))
            c.mux(st.encode(None))
        return path

    return make
