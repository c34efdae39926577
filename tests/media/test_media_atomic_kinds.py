from __future__ import annotations

from pathlib import Path

import pytest

from faceanim.errors import MediaError
from faceanim.media import (
    atomic_output,
    is_audio_path,
    is_image_path,
    is_video_path,
)


def test_atomic_output_renames_on_success_and_creates_parents(tmp_path: Path) -> None:
    final = tmp_path / "a" / "b" / "out.mp4"
    with atomic_output(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp.suffix == ".mp4" and ".tmp-" in tmp.name
        tmp.write_bytes(b"data")
        assert not final.exists()  # nothing under the final name while writing
    assert final.read_bytes() == b"data"
    assert sorted(p.name for p in final.parent.iterdir()) == ["out.mp4"]


def test_atomic_output_cleans_up_and_keeps_old_file_on_error(tmp_path: Path) -> None:
    final = tmp_path / "out.png"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(final) as tmp:
        tmp.write_bytes(b"half-written")
        raise RuntimeError("boom")
    assert final.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_atomic_output_nothing_written_is_an_error(tmp_path: Path) -> None:
    final = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="nothing was written"), atomic_output(final):
        pass
    assert not final.exists()


@pytest.mark.parametrize(
    ("name", "video", "image", "audio"),
    [
        ("clip.MP4", True, False, False),
        ("x.mov", True, False, False),
        ("face.JPG", False, True, False),
        ("face.png", False, True, False),
        ("speech.wav", False, False, True),
        ("speech.M4A", False, False, True),
        ("notes.txt", False, False, False),
        ("noext", False, False, False),
    ],
)
def test_kinds(name: str, video: bool, image: bool, audio: bool) -> None:
    assert (is_video_path(name), is_image_path(name), is_audio_path(Path(name))) == (video, image, audio)
