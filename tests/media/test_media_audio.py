from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceanim.errors import MediaError
from faceanim.media import audio_duration, iter_audio, read_audio, write_video


@pytest.mark.parametrize(
    "name", ["iplap_abstract.mp3", "dreamtalk_acknowledgement_english.m4a", "dreamtalk_German1.wav"]
)
def test_real_audio_to_16k_mono(shared_data: Path, name: str) -> None:
    path = shared_data / "audio" / name
    x = read_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.abs(x).max() <= 1.0 and np.sqrt(np.mean(x**2)) > 1e-3  # not silent
    assert x.size / 16000 == pytest.approx(audio_duration(path), abs=0.1)


def test_real_video_audio_track(shared_data: Path) -> None:
    path = shared_data / "talking" / "vexpress_RD_Radio10_0_clip_0.mp4"
    x = read_audio(path, 8000)
    assert x.size / 8000 == pytest.approx(audio_duration(path), abs=0.1)


def test_chunks_concatenate_to_read_audio(shared_data: Path) -> None:
    path = shared_data / "audio" / "vexpress_v_exprss_intro_chattts.mp3"
    chunks = list(iter_audio(path, 16000, chunk_seconds=0.7))
    assert {c.size for c in chunks[:-1]} == {11200} and 0 < chunks[-1].size <= 11200
    assert np.array_equal(np.concatenate(chunks), read_audio(path))


def test_synthetic_sine_resampled(make_wav: Callable[..., Path]) -> None:
    wav = make_wav(seconds=1.5, rate=44100, freq=300.0, channels=1, amp=0.5)
    assert audio_duration(wav) == pytest.approx(1.5)
    x = read_audio(wav, 16000)
    assert x.size == pytest.approx(24000, abs=16)
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.01)
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    assert freqs[np.abs(np.fft.rfft(x)).argmax()] == pytest.approx(300, abs=2)
    chunks = list(iter_audio(wav, 16000, chunk_seconds=0.25))
    assert [c.size for c in chunks[:-1]] == [4000] * (len(chunks) - 1)
    assert np.array_equal(np.concatenate(chunks), x)


def test_bad_audio_inputs_name_the_file(
    tmp_path: Path, make_wav: Callable[..., Path], pattern_frame: Callable[..., np.ndarray]
) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 8192, np.uint8).tobytes())
    header_then_garbage = tmp_path / "badheader.wav"
    header_then_garbage.write_bytes(make_wav(seconds=0.2).read_bytes()[:12] + b"\xff\x13" * 3000)
    empty = tmp_path / "empty.wav"
    empty.touch()
    silent_video = write_video(tmp_path / "silent.mp4", [pattern_frame(0)] * 2, 25)
    cases = [
        (tmp_path / "missing.wav", "not found"),
        (garbage, "cannot open"),
        (header_then_garbage, "cannot open"),
        (empty, "empty"),
        (silent_video, "has no audio stream"),
    ]
    for path, words in cases:
        for call in (read_audio, lambda p: list(iter_audio(p)), audio_duration):
            with pytest.raises(MediaError, match=words) as err:
                call(path)
            assert str(path) in str(err.value)
