"""Log-mel features and voice activity."""

from __future__ import annotations

import numpy as np
import pytest

from faceanim.audio.features import LogMelStream, MelConfig, log_mel, mel_filterbank
from faceanim.audio.sync import sync_offset
from faceanim.audio.vad import EnergyVad, frame_rms_db, smooth_gate, speech_share


def test_log_mel_shape_and_alignment() -> None:
    x = np.zeros(16000 * 2, np.float32)
    m = log_mel(x)
    assert m.shape == (200, 80)  # 10 ms hop: 100 per second, 4 per 25-fps frame
    assert np.allclose(m, np.log(MelConfig().floor))  # silence is the floor


def test_tone_lands_in_its_mel_band() -> None:
    t = np.arange(16000) / 16000
    low = log_mel(0.5 * np.sin(2 * np.pi * 300 * t)).mean(0)
    high = log_mel(0.5 * np.sin(2 * np.pi * 3000 * t)).mean(0)
    assert np.argmax(high) > np.argmax(low) + 20
    fb = mel_filterbank()
    assert fb.shape == (80, 257) and (fb >= 0).all()


@pytest.mark.parametrize("chunk", [1, 159, 160, 1000, 7777])
def test_streaming_equals_whole(chunk: int) -> None:
    x = np.random.default_rng(0).standard_normal(16000 + 123).astype(np.float32) * 0.1
    s = LogMelStream()
    parts = [s.push(x[i : i + chunk]) for i in range(0, x.size, chunk)] + [s.finish()]
    assert np.allclose(np.concatenate(parts), log_mel(x), atol=1e-4)


def test_vad_silence_and_speech() -> None:
    sr = 16000
    t = np.arange(3 * sr) / sr
    x = np.where((t > 1) & (t < 2), 0.3 * np.sin(2 * np.pi * 200 * t), 0.0)
    x = x + 1e-4 * np.random.default_rng(0).standard_normal(x.size)  # a quiet noise floor
    speech = EnergyVad()(frame_rms_db(x, 640))
    assert not speech[:20].any() and not speech[-15:].any()
    assert speech[28:50].all()
    assert speech_share(np.zeros(sr), sr) == 0.0
    g = smooth_gate(speech)
    assert g.min() == 0.0 and g.max() == 1.0 and np.abs(np.diff(g)).max() <= 0.5


def test_vad_ignores_a_click() -> None:
    db = np.full(50, -80.0)
    db[25] = -10.0  # one loud frame
    assert not EnergyVad()(db).any()


def test_sync_offset_finds_a_shift() -> None:
    rng = np.random.default_rng(3)
    energy = np.convolve(rng.standard_normal(400), np.ones(3) / 3, "same")
    for k in (-4, 0, 3):
        mouth = np.roll(energy, k)  # mouth[t] = energy[t - k]: the mouth lags by k
        off, corr = sync_offset(mouth[10:-10], energy[10:-10])
        assert off == k and corr > 0.9


def test_silero_vad_if_installed() -> None:
    pytest.importorskip("onnxruntime")
    if __import__("importlib").util.find_spec("silero_vad") is None:
        pytest.skip("silero-vad not installed")
    from faceanim.audio.vad import SileroVad

    rng = np.random.default_rng(0)
    assert not SileroVad()(np.zeros(32000, np.float32)).any()
    assert not SileroVad()(0.3 * rng.standard_normal(32000).astype(np.float32)).any()  # noise is not speech
    t = np.arange(32000) / 16000  # a crude vowel: harmonics of 140 Hz with a syllable envelope
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    flags = SileroVad()((0.2 * voice).astype(np.float32))
    assert flags.shape == (50,)


@pytest.mark.parametrize("detector", ["energy", "silero"])
def test_real_speech_then_silence_gates(shared_data, detector: str) -> None:
    if detector == "silero" and __import__("importlib").util.find_spec("silero_vad") is None:
        pytest.skip("silero-vad not installed")
    from faceanim.audio.generate import speech_input
    from faceanim.media.audio import read_audio

    x = read_audio(shared_data / "audio" / "dreamtalk_spanish1.wav")[: 3 * 16000]
    x = np.concatenate([x, np.zeros(2 * 16000, np.float32)])
    gate = np.concatenate([b.gate for b in speech_input([x[i : i + 7000] for i in range(0, x.size, 7000)],
                                                        detector=detector)])
    assert gate.shape == (125,)
    assert gate[:75].mean() > 0.6  # mostly speech
    assert (gate[85:] == 0).all()  # silence (after the release ramp) closes the mouth
