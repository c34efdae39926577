"""``faceanim inspect`` on audio files: duration, sample rate, channels and share of speech."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceanim.cli import main
from faceanim.pipeline.inspect import inspect_file


def test_inspect_reports_audio(make_audio: Callable[..., Path], capsys) -> None:
    path = make_audio("talk.mp3", "libmp3lame", "fltp", rate=44100, channels=2, seconds=2.0)
    r = inspect_file(path)
    assert r["kind"] == "audio" and r["sample_rate"] == 44100 and r["channels"] == 2
    assert r["duration"] == pytest.approx(2.0, abs=0.1) and r["speech_share"] > 0.9
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "44100 Hz" in out and "2 channels" in out and "speech:" in out


def test_silence_has_no_speech(tmp_path: Path) -> None:
    import av

    path = tmp_path / "quiet.wav"
    with av.open(str(path), "w") as out:
        st = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        out.mux(st.encode(frame))
        out.mux(st.encode(None))
    r = inspect_file(path)
    assert r["speech_share"] == 0.0 and r["duration"] == pytest.approx(1.0)


def test_bad_audio_and_out_option(make_audio: Callable[..., Path], tmp_path: Path, capsys) -> None:
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    assert main(["inspect", str(empty)]) == 2
    good = make_audio("g.wav", "pcm_s16le", "s16")
    assert main(["inspect", str(good), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "e.wav" in err and "g.wav" in err
