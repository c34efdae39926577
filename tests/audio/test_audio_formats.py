"""Every common speech format decodes to 16 kHz mono with the right length and pitch; bad files fail cleanly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceanim.errors import MediaError
from faceanim.media.audio import audio_duration, iter_audio, read_audio

FORMATS = [
    ("a.wav", "pcm_s16le", "s16", 8000, 1),
    ("b.wav", "pcm_s16le", "s16", 16000, 2),
    ("c.wav", "pcm_s24le", "s32", 48000, 2),
    ("d.wav", "pcm_s16le", "s16", 44100, 1),
    ("e.mp3", "libmp3lame", "fltp", 44100, 2),
    ("f.m4a", "aac", "fltp", 48000, 1),
    ("g.ogg", "libopus", "flt", 48000, 1),
    ("h.opus", "libopus", "flt", 48000, 2),
    ("i.flac", "flac", "s16", 22050, 1),
]


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[np.argmax(spec)])


@pytest.mark.parametrize(("name", "codec", "fmt", "rate", "channels"), FORMATS)
def test_format_reads_as_16k_mono(make_audio: Callable[..., Path], name: str, codec: str, fmt: str, rate: int,
                                  channels: int) -> None:
    path = make_audio(name, codec, fmt, rate=rate, channels=channels, seconds=1.0, freq=440.0)
    x = read_audio(path, 16000)
    assert x.ndim == 1 and x.dtype == np.float32
    assert x.size / 16000 == pytest.approx(1.0, abs=0.08)  # codec priming/padding only
    assert _peak_hz(x, 16000) == pytest.approx(440.0, abs=5.0)
    assert audio_duration(path) == pytest.approx(1.0, abs=0.08)


def test_video_audio_track(make_audio: Callable[..., Path], tmp_path: Path) -> None:
    from faceanim.media.video import VideoWriter

    wav = make_audio("speech.wav", "pcm_s16le", "s16")
    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25, audio=wav) as w:
        for _ in range(25):
            w.write(np.zeros((64, 64, 3), np.uint8))
    x = read_audio(video, 16000)
    assert x.size / 16000 == pytest.approx(1.0, abs=0.08)
    assert _peak_hz(x, 16000) == pytest.approx(440.0, abs=5.0)


def test_streaming_chunks_equal_whole(make_audio: Callable[..., Path]) -> None:
    path = make_audio("s.mp3", "libmp3lame", "fltp", rate=44100, seconds=3.0)
    assert np.array_equal(np.concatenate(list(iter_audio(path, 16000, chunk_seconds=0.37))), read_audio(path))


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, bytes(np.random.default_rng(0).integers(0, 256, 4096,
                                                                                               dtype=np.uint8))])
def test_bad_files_one_line_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "speech.mp3"
    bad.write_bytes(content)
    with pytest.raises(MediaError) as e:
        read_audio(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_truncated_wav_header_is_an_error(make_audio: Callable[..., Path], tmp_path: Path) -> None:
    good = make_audio("t.wav", "pcm_s16le", "s16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:30])  # header only, no samples
    with pytest.raises(MediaError):
        read_audio(cut)
