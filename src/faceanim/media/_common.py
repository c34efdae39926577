"""Shared input checks and PyAV error wrapping (private)."""

from __future__ import annotations

from pathlib import Path

import av
import av.container

from faceanim.errors import MediaError

#: Exceptions a decoder or demuxer may raise for corrupt or unreadable input.
DECODE_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, EOFError, UnicodeError)


def reason(e: BaseException) -> str:
    """A short human reason from an exception (FFmpeg's strerror when there is one)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).rstrip(".")


def check_input_file(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is a non-empty regular file, else raise MediaError."""
    p = Path(path)
    if not p.exists():
        raise MediaError("file not found", path=p)
    if not p.is_file():
        raise MediaError("not a file", path=p)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise MediaError(f"cannot read file ({reason(e)})", path=p) from e
    if size == 0:
        raise MediaError("file is empty (0 bytes)", path=p)
    return p


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading with PyAV; MediaError if missing, empty, corrupt or not media."""
    p = check_input_file(path)
    try:
        return av.open(str(p), mode="r", metadata_errors="replace")
    except DECODE_ERRORS as e:
        raise MediaError(f"cannot open as media, corrupt or unsupported ({reason(e)})", path=p) from e
