"""Uploaded media: sniff the real type from the bytes, store it under a server-chosen name, check it decodes.

The client's file name and content type are never used: a file is what its first bytes say it is, and it is
saved as ``<field><suffix>`` (e.g. ``source.jpg``) inside the job's own directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from faceanim.errors import FaceAnimError, MediaError
from faceanim.server.config import Limits

Kind = Literal["image", "video", "audio"]
HEAD_BYTES = 64


class UploadError(FaceAnimError):
    """A rejected upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    suffix: str  # the suffix the server stores the file under


@dataclass(frozen=True)
class Checked:
    path: Path
    kind: Kind
    width: int = 0
    height: int = 0
    seconds: float | None = None


def sniff(head: bytes) -> Sniffed | None:
    """The media type from a file's first bytes, or None when it is not one faceanim reads."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", ".jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", ".png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", ".webp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image", ".tiff")
    if head[:2] == b"BM" and len(head) >= 26:
        return Sniffed("image", ".bmp")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("video", ".gif")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return Sniffed("audio", ".m4a")
        return Sniffed("video", ".mov" if brand == b"qt  " else ".mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", ".mkv")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("video", ".avi")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio", ".wav")
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return Sniffed("video", ".mpg")
    if head.startswith(b"fLaC"):
        return Sniffed("audio", ".flac")
    if head.startswith(b"OggS"):
        return Sniffed("audio", ".ogg")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Sniffed("audio", ".mp3")
    return None


def image_size(path: Path, field: str, max_pixels: int) -> tuple[int, int]:
    """Width and height from the header (nothing decoded yet); 413 when over ``max_pixels``."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError:
        raise UploadError(413, f"{field}: image has too many pixels") from None
    except Exception:
        raise UploadError(400, f"{field}: cannot read the image (corrupt or unsupported)") from None
    if w * h > max_pixels:
        raise UploadError(413, f"{field}: image is {w}x{h}, more than the {max_pixels / 1e6:.1f} megapixels allowed")
    return w, h


def decode_image(path: Path, field: str, max_pixels: int) -> np.ndarray:
    """The image as RGB uint8 after the header's size check; 400 when it does not decode."""
    image_size(path, field, max_pixels)
    from faceanim.media.image import read_image

    try:
        return read_image(path)
    except MediaError as e:
        raise UploadError(400, f"{field}: {e.message}") from None


def check_upload(path: Path, kind: Kind, field: str, limits: Limits) -> Checked:
    """Prove a stored upload decodes and is within the limits (pixels, duration); UploadError otherwise."""
    if kind == "image":
        image = decode_image(path, field, limits.image_pixels)
        return Checked(path, kind, image.shape[1], image.shape[0])
    if kind == "video":
        from faceanim.media.video import probe_video

        try:
            info = probe_video(path)
        except MediaError as e:
            if "no video stream" in e.message:  # an audio-only MP4/MKV: check it as audio
                return check_upload(path, "audio", field, limits)
            raise UploadError(400, f"{field}: {e.message}") from None
        if info.width * info.height > limits.video_pixels:
            raise UploadError(
                413,
                f"{field}: video is {info.width}x{info.height}, more than the "
                f"{limits.video_pixels / 1e6:.1f} megapixels per frame allowed",
            )
        seconds = info.duration
        if seconds is None and info.frame_count:
            seconds = info.frame_count / float(info.fps)
        if seconds is not None and seconds > limits.seconds:
            raise UploadError(413, f"{field}: video lasts {seconds:.1f} s, more than the {limits.seconds:g} s allowed")
        return Checked(path, kind, info.width, info.height, seconds)
    from faceanim.media.audio import audio_duration

    try:
        seconds = audio_duration(path)
    except MediaError as e:
        raise UploadError(400, f"{field}: {e.message}") from None
    if seconds > limits.seconds:
        raise UploadError(413, f"{field}: audio lasts {seconds:.1f} s, more than the {limits.seconds:g} s allowed")
    return Checked(path, kind, seconds=seconds)


def require_face(image: np.ndarray, field: str) -> None:
    """422 when the image shows no face."""
    from faceanim.face.detect import FaceLandmarker

    with FaceLandmarker() as lm:
        if not lm.detect(image):
            raise UploadError(422, f"{field}: no face found")
