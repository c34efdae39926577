"""Weight loading: round trip, and clear errors for missing, foreign and corrupt files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from faceanim.audio.weights import load_audio2motion
from faceanim.errors import FaceAnimError


def test_round_trip(tiny_weights: Path) -> None:
    model = load_audio2motion(tiny_weights)
    assert model.config.d_model == 32 and not model.training
    feats = torch.zeros(1, 10, 320)
    style = torch.zeros(1, model.config.style_points * 3)
    out = model(feats, style, noise=torch.zeros(1, 1, model.config.latent_dim))
    assert torch.isfinite(out.dense).all()


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(FaceAnimError, match="not found"):
        load_audio2motion(tmp_path / "none.safetensors")


def test_foreign_safetensors(tmp_path: Path) -> None:
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "something-else"})
    with pytest.raises(FaceAnimError, match="not faceanim"):
        load_audio2motion(p)


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_corrupt(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(FaceAnimError) as e:
        load_audio2motion(p)
    assert str(p) in str(e.value)
