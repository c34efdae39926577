"""Checks on uploaded files before any work: kind, size, pixels and duration, each a one-line message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from faceanim.errors import MediaError
from faceanim.media.kinds import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from faceanim.media.video import probe_video


@dataclass(frozen=True)
class UploadLimits:
    max_mb: float = 100.0
    max_pixels: int = 4096 * 4096  # per image or video frame
    max_seconds: float = 120.0  # driving video or audio duration


def _kinds(kind: str) -> frozenset[str]:
    return {"image": IMAGE_SUFFIXES, "video": VIDEO_SUFFIXES, "audio": AUDIO_SUFFIXES,
            "driving": IMAGE_SUFFIXES | VIDEO_SUFFIXES}[kind]


def check_upload(path: str | Path | None, kind: str, limits: UploadLimits = UploadLimits(), what: str = "file") -> Path:
    """``path`` if it is an acceptable ``kind`` (image, video, audio, driving) within ``limits``, else MediaError."""
    if not path:
        raise MediaError(f"please upload a {what} first")
    p = Path(path)
    if not p.is_file():
        raise MediaError("upload not found (try uploading it again)", path=p.name)
    suffix = p.suffix.lower()
    allowed = _kinds(kind)
    if suffix not in allowed:
        raise MediaError(f"unsupported file type {suffix or '(none)'} for the {what}; use one of "
                         f"{', '.join(sorted(allowed))}", path=p.name)
    mb = p.stat().st_size / 1e6
    if mb > limits.max_mb:
        raise MediaError(f"file too large ({mb:.1f} MB; the limit is {limits.max_mb:g} MB)", path=p.name)
    if mb == 0:
        raise MediaError("file is empty", path=p.name)
    if suffix in IMAGE_SUFFIXES:
        try:
            with Image.open(p) as im:
                w, h = im.size
        except Exception as e:
            raise MediaError("cannot read image, corrupt or unsupported", path=p.name) from e
        _check_pixels(w, h, limits, p)
    elif suffix in VIDEO_SUFFIXES:
        try:
            info = probe_video(p)
        except MediaError as e:
            raise MediaError(e.message, path=p.name) from e
        _check_pixels(info.width, info.height, limits, p)
        seconds = info.duration or 0.0
        if seconds > limits.max_seconds:
            raise MediaError(f"video too long ({seconds:.0f} s; the limit is {limits.max_seconds:g} s)", path=p.name)
    return p


def _check_pixels(w: int, h: int, limits: UploadLimits, p: Path) -> None:
    if w * h > limits.max_pixels:
        raise MediaError(f"too many pixels ({w}x{h}; the limit is {limits.max_pixels / 1e6:.1f} megapixels)",
                         path=p.name)
