"""``faceanim speak`` end to end (tiny random network, public-domain portrait) and its error cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from faceanim.cli import main


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage.data import astronaut as img

    from faceanim.media.image import write_image

    p = tmp_path_factory.mktemp("src") / "astronaut.png"
    write_image(p, np.ascontiguousarray(img()[:300, 80:380]))
    return p


def test_speak_writes_a_marked_video_with_the_speech(astronaut: Path, make_audio: Callable[..., Path],
                                                     tiny_weights: Path, tmp_path: Path, capsys) -> None:
    audio = make_audio("speech.m4a", "aac", "fltp", rate=44100, seconds=1.6)
    out = tmp_path / "talk.mp4"
    code = main(["speak", "--source", str(astronaut), "--audio", str(audio), "-o", str(out),
                 "--weights", str(tiny_weights), "-q"])
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.average_rate == 25 and (v.width, v.height) == (300, 300)
        assert a is not None
        n = sum(1 for _ in c.decode(video=0))
    assert abs(n - 40) <= 1  # 1.6 s at 25 fps (AAC adds up to a frame of padding)
    assert main(["verify", str(out)]) == 0
    assert "speech in" in capsys.readouterr().out


def test_speak_no_provenance(astronaut: Path, make_audio: Callable[..., Path], tiny_weights: Path,
                             tmp_path: Path) -> None:
    audio = make_audio("speech.wav", "pcm_s16le", "s16", seconds=0.5)
    out = tmp_path / "plain.mp4"
    assert main(["speak", "--source", str(astronaut), "--audio", str(audio), "-o", str(out),
                 "--weights", str(tiny_weights), "--no-provenance", "-q"]) == 0
    assert main(["verify", str(out)]) == 1


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00", bytes(range(256)) * 20])
def test_bad_audio_one_line_no_output(astronaut: Path, tiny_weights: Path, tmp_path: Path, content: bytes,
                                      capsys) -> None:
    bad = tmp_path / "speech.mp3"
    bad.write_bytes(content)
    out = tmp_path / "out.mp4"
    code = main(["speak", "--source", str(astronaut), "--audio", str(bad), "-o", str(out),
                 "--weights", str(tiny_weights), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(bad) in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_missing_inputs_and_weights(astronaut: Path, make_audio: Callable[..., Path], tmp_path: Path,
                                    capsys) -> None:
    audio = make_audio("s.wav", "pcm_s16le", "s16", seconds=0.5)
    out = tmp_path / "o.mp4"
    assert main(["speak", "--source", str(tmp_path / "nope.jpg"), "--audio", str(audio), "-o", str(out)]) == 2
    assert main(["speak", "--source", str(astronaut), "--audio", str(audio), "-o", str(out),
                 "--weights", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "none.safetensors" in err and not out.exists()


def test_faceless_source(make_audio: Callable[..., Path], tiny_weights: Path, tmp_path: Path, capsys) -> None:
    from faceanim.media.image import write_image

    gray = tmp_path / "gray.png"
    write_image(gray, np.full((128, 128, 3), 128, np.uint8))
    audio = make_audio("s.wav", "pcm_s16le", "s16", seconds=0.5)
    out = tmp_path / "o.mp4"
    assert main(["speak", "--source", str(gray), "--audio", str(audio), "-o", str(out),
                 "--weights", str(tiny_weights)]) == 2
    assert "gray.png" in capsys.readouterr().err and not out.exists()


def test_speak_with_a_local_speech_encoder(astronaut: Path, make_audio: Callable[..., Path], tiny_weights: Path,
                                           tmp_path: Path, capsys) -> None:
    import torch
    from test_encoders import W2V, _folder, _w2v_state

    from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig
    from faceanim.train.audio2motion_trainer import export_weights

    enc = _folder(tmp_path / "w2v", W2V, _w2v_state(W2V, "wav2vec2."))
    torch.manual_seed(0)
    model = Audio2Motion(Audio2MotionConfig(audio_dim=48, d_model=32, n_heads=2, ff_dim=64, lip_layers=1,
                                            vae_layers=1, latent_dim=4))
    weights = tmp_path / "enc.safetensors"
    export_weights(model, weights, {})
    audio = make_audio("s.wav", "pcm_s16le", "s16", seconds=0.8)
    out = tmp_path / "o.mp4"
    args = ["speak", "--source", str(astronaut), "--audio", str(audio), "-o", str(out), "-q"]
    assert main([*args, "--weights", str(weights), "--audio-encoder", str(enc)]) == 0 and out.is_file()
    out.unlink()
    assert main([*args, "--weights", str(weights)]) == 2  # encoder weights without the encoder
    assert main([*args, "--weights", str(tiny_weights), "--audio-encoder", str(enc)]) == 2  # log-mel weights
    err = capsys.readouterr().err
    assert "--audio-encoder" in err and "expect" in err and not out.exists()


def test_progress_and_cancel(astronaut: Path, make_audio: Callable[..., Path], tiny_weights: Path,
                             tmp_path: Path) -> None:
    import threading

    from faceanim.errors import Cancelled
    from faceanim.pipeline.speak import SpeakOptions, speak_file

    audio = make_audio("s.wav", "pcm_s16le", "s16", seconds=2.0)
    seen: list[tuple[int, int | None]] = []
    opts = SpeakOptions(weights=str(tiny_weights), progress=False)
    r = speak_file(str(astronaut), str(audio), str(tmp_path / "a.mp4"), opts,
                   on_progress=lambda d, t: seen.append((d, t)))
    assert r.frames == 50 and seen[-1] == (50, 50)
    cancel = threading.Event()

    def stop_at_10(done: int, total: int | None) -> None:
        if done == 10:
            cancel.set()

    with pytest.raises(Cancelled):
        speak_file(str(astronaut), str(audio), str(tmp_path / "b.mp4"), opts, on_progress=stop_at_10, cancel=cancel)
    assert not (tmp_path / "b.mp4").exists() and not list(tmp_path.glob("b.tmp-*"))
