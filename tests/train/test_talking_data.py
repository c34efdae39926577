"""The talking-clip cache on a real clip: 25-fps tracks aligned with 4 log-mels per frame, sync check, split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceanim.errors import FaceAnimError
from faceanim.train.talking_data import load_clip, load_index, prepare_talking_cache


def test_cache_one_real_clip(clip, tmp_path: Path) -> None:
    src = clip("lipnet_grid_sbwe5n.mpg")  # GRID: 3 s, in sync
    prepare_talking_cache([src], tmp_path / "cache", progress=False)
    (rec,) = load_index(tmp_path / "cache")
    assert rec.name == "lipnet_grid_sbwe5n" and rec.identity == "grid" and rec.split == "train"
    assert rec.frames == pytest.approx(75, abs=2) and abs(rec.offset) <= 1 and not rec.excluded
    a = load_clip(tmp_path / "cache" / "clips" / f"{rec.name}.npz")
    assert a["mel"].shape == (4 * rec.frames, 80) and a["expression"].shape == (rec.frames, 478, 3)
    assert a["lip_open"].std() > 0.01  # the mouth moves
    before = (tmp_path / "cache" / "clips" / f"{rec.name}.npz").stat().st_mtime_ns
    prepare_talking_cache([src], tmp_path / "cache", progress=False)  # resumable: reused, not redone
    assert (tmp_path / "cache" / "clips" / f"{rec.name}.npz").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "cache" / "index.json").read_text())["fps"] == 25


def test_unusable_clip_is_reported_not_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    prepare_talking_cache([bad], tmp_path / "cache", progress=False)
    (rec,) = load_index(tmp_path / "cache")
    assert rec.excluded.startswith("unusable") and rec.frames == 0


def test_no_inputs(tmp_path: Path) -> None:
    with pytest.raises(FaceAnimError):
        prepare_talking_cache([tmp_path], tmp_path / "cache", progress=False)
    with pytest.raises(FaceAnimError):
        load_index(tmp_path)
