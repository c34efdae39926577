"""File-kind detection by suffix (case-insensitive)."""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".ogv",
        ".gif",
    }
)
"""Suffixes treated as video. ``.gif`` counts as video (it is usually animated)."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".webp", ".tif", ".tiff"}
)
"""Suffixes treated as still images."""

AUDIO_SUFFIXES: frozenset[str] = frozenset(
    {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff", ".amr"}
)
"""Suffixes treated as audio-only files."""


def _suffix(p: str | Path) -> str:
    return Path(p).suffix.lower()


def is_video_path(p: str | Path) -> bool:
    """True if ``p`` has a video suffix."""
    return _suffix(p) in VIDEO_SUFFIXES


def is_image_path(p: str | Path) -> bool:
    """True if ``p`` has a still-image suffix."""
    return _suffix(p) in IMAGE_SUFFIXES


def is_audio_path(p: str | Path) -> bool:
    """True if ``p`` has an audio-only suffix."""
    return _suffix(p) in AUDIO_SUFFIXES
