from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceanim.errors import MediaError
from faceanim.media import read_image, read_image_metadata, resize_max_side, write_image


def _marked(w: int = 40, h: int = 20) -> np.ndarray:
    img = np.full((h, w, 3), 30, np.uint8)
    img[: h // 4, : w // 4] = (255, 0, 0)  # red marker top-left
    return img


def _red_centre(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero((img[..., 0] > 150) & (img[..., 1] < 100))
    return ys.mean() / img.shape[0], xs.mean() / img.shape[1]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be turned 90 degrees clockwise for display
    Image.fromarray(_marked(40, 20)).save(path, quality=95, exif=exif.tobytes())
    img = read_image(path)
    assert img.shape == (40, 20, 3) and img.dtype == np.uint8
    y, x = _red_centre(img)
    assert y < 0.5 and x > 0.5  # top-left marker is now top-right


def test_grayscale_png_becomes_rgb(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.shape == (8, 25, 3)
    assert all(np.array_equal(img[..., c], gray) for c in range(3))


def test_rgba_png_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (0, 0, 200)
    rgba[..., 3] = [[0, 128, 255], [255, 255, 0]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png").astype(int)
    assert img[0, 0].tolist() == [255, 255, 255]
    assert img[0, 2].tolist() == [0, 0, 200]
    assert np.abs(img[0, 1] - [127, 127, 227]).max() <= 1


def test_palette_transparency_on_white(tmp_path: Path) -> None:
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    p.info["transparency"] = 1
    p.save(tmp_path / "p.png", transparency=1)
    assert read_image(tmp_path / "p.png")[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg_converted(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (220, 40, 40)
    rgb[:, 16:] = (40, 40, 220)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    img = read_image(tmp_path / "c.jpg")
    assert img.shape == (32, 32, 3)
    assert np.abs(img[4:28, 2:14].astype(int) - (220, 40, 40)).mean() < 10
    assert np.abs(img[4:28, 18:30].astype(int) - (40, 40, 220)).mean() < 10


def test_16bit_gray_png_scaled(tmp_path: Path) -> None:
    g16 = np.array([[0, 257 * 100, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    assert read_image(tmp_path / "g16.png")[0].tolist() == [[0] * 3, [100] * 3, [255] * 3]


def test_48bit_and_64bit_png_scaled_in_rgb_order(tmp_path: Path) -> None:
    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[..., 0] = 257 * 200  # R
    rgb16[..., 2] = 257 * 10 + 129  # B = 10.502 * 257: rounds to 11 (dropping the low byte would give 10)
    cv2.imwrite(str(tmp_path / "c48.png"), rgb16[..., ::-1])  # OpenCV wants BGR
    assert read_image(tmp_path / "c48.png")[0, 0].tolist() == [200, 0, 11]
    alpha = np.array([[0, 65535], [65535, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "c64.png"), np.dstack([rgb16[..., ::-1], alpha]))
    img = read_image(tmp_path / "c64.png")
    assert img[0, 0].tolist() == [255, 255, 255] and img[0, 1].tolist() == [200, 0, 11]


def test_max_side_and_resize_helper(tmp_path: Path) -> None:
    Image.fromarray(_marked(400, 300)).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_side=100).shape == (75, 100, 3)
    img = np.zeros((300, 400, 3), np.uint8)
    small, s = resize_max_side(img, 200)
    assert small.shape == (150, 200, 3) and s == pytest.approx(0.5)
    same, s1 = resize_max_side(img, 1000)  # never upscales
    assert same is img and s1 == 1.0


def test_real_portrait_loads(shared_data: Path) -> None:
    img = read_image(shared_data / "portraits" / "liveportrait_s12.jpg", max_side=256)
    assert img.dtype == np.uint8 and img.ndim == 3 and max(img.shape[:2]) == 256


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_metadata_round_trip(tmp_path: Path, suffix: str) -> None:
    meta = {"faceanim_synthetic": "true", "note": "Grüße, 顔", "comment": "made by a test"}
    path = write_image(tmp_path / "sub" / f"m{suffix}", _marked(), metadata=meta)
    assert read_image_metadata(path) == meta
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left behind
    assert read_image(path).shape == (20, 40, 3)


def test_jpeg_metadata_survives_in_both_exif_and_comment(tmp_path: Path) -> None:
    meta = {"faceanim_synthetic": "true"}
    path = write_image(tmp_path / "m.jpg", _marked(), metadata=meta)
    with Image.open(path) as im:
        assert json.loads(im.info["comment"]) == meta
        assert json.loads(im.getexif()[0x010E]) == meta
        im.save(tmp_path / "no_comment.jpg", exif=im.getexif().tobytes())  # a tool that drops COM
    assert read_image_metadata(tmp_path / "no_comment.jpg") == meta


def test_write_image_bad_suffix_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="unsupported output image"):
        write_image(tmp_path / "x.xyz", _marked())
    with pytest.raises(MediaError, match="metadata"):
        write_image(tmp_path / "x.bmp", _marked(), metadata={"a": "b"})
    assert list(tmp_path.iterdir()) == []


def test_bad_images_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.png"
    empty.touch()
    for path in (tmp_path / "missing.png", corrupt, truncated, empty):
        with pytest.raises(MediaError) as err:
            read_image(path)
        assert str(path) in str(err.value)
