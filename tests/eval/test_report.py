"""Tests for faceanim.eval.report: JSON round trip, markdown layout, contact sheet and PNG output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceanim.eval import report as R


def test_write_json_round_trips_nan(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.json"
    obj = {
        "nan": float("nan"),
        "np": np.float32(2.5),
        "arr": np.array([1.0, np.nan, np.inf]),
        "i": np.int64(7),
        "neg": -np.inf,
        "nested": ({"x": np.nan},),
    }
    R.write_json(path, obj)
    raw = path.read_text()
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = R.read_json(path)
    assert math.isnan(back["nan"]) and back["np"] == 2.5 and back["i"] == 7
    assert back["arr"][0] == 1.0 and math.isnan(back["arr"][1]) and back["arr"][2] == math.inf
    assert back["neg"] == -math.inf
    assert math.isnan(back["nested"][0]["x"])
    assert json.loads(raw)["nan"] is None
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # temp file gone


def test_write_json_failure_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    R.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        R.write_json(path, {"a": object()})
    assert R.read_json(path) == {"a": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_markdown_table() -> None:
    rows = [{"name": "a|b", "psnr": 30.12345, "n": 3}, {"name": "c", "psnr": np.float32(1.5)}]
    text = R.markdown_table(rows, ["name", "psnr", "n"], float_fmt="{:.2f}")
    lines = text.strip().splitlines()
    assert lines[0] == "| name | psnr | n |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == r"| a\|b | 30.12 | 3 |"
    assert lines[3] == "| c | 1.50 |  |"


def test_contact_sheet_shape_and_letterbox() -> None:
    wide = np.full((50, 100, 3), 200, np.uint8)
    tall = np.full((90, 30, 3), 100, np.uint8)
    gray = np.full((20, 20), 255, np.uint8)
    sheet = R.contact_sheet(
        [[wide, tall, gray, wide], [tall, wide]], ["source", "driving", "output", "gt"], 64
    )
    assert sheet.shape == (24 + 2 * 64, 4 * 64, 3) and sheet.dtype == np.uint8
    tile = sheet[24 : 24 + 64, :64]
    assert (tile[0] == 0).all() and (tile[32] == 200).all()  # letterbox bars top, image in middle
    assert sheet[:24].max() == 255  # label text drawn
    assert (sheet[24 + 64 :, 2 * 64 :] == 0).all()  # short row padded
    assert R.contact_sheet([[wide]], [], tile=32).shape == (32, 32, 3)


def test_save_png_rgb_order(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    path = tmp_path / "sheet.png"
    R.save_png(path, rgb)
    bgr = cv2.imread(str(path))
    assert bgr is not None and bgr[0, 0].tolist() == [0, 0, 255]
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


def test_reports_are_readable_by_others(tmp_path: Path) -> None:
    """The one atomic writer: reports get the usual 0666-minus-umask mode, not mkstemp's private 0600."""
    import os

    old = os.umask(0o022)
    try:
        R.write_json(tmp_path / "r.json", {"a": 1})
        R.save_png(tmp_path / "s.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.png").stat().st_mode & 0o777 == 0o644


def test_atomic_output_normalises_a_private_temp_file(tmp_path: Path) -> None:
    import os

    from faceanim.media.atomic import atomic_output

    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "x.bin") as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"x")
            os.close(fd)
    finally:
        os.umask(old)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644


def test_data_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceanim.eval.data import data_folder

    monkeypatch.setenv("FACEANIM_DATA", str(tmp_path / "env"))
    assert data_folder(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_folder() == tmp_path / "env"
    monkeypatch.delenv("FACEANIM_DATA")
    (tmp_path / "checkout").mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert data_folder() == (tmp_path / "shared" / "data").resolve()
