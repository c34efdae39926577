"""The one resolver for the sample-data folder (``../shared/data``) and its clip lists."""

from __future__ import annotations

import os
from pathlib import Path

from faceanim.media.kinds import is_video_path

ENV = "FACEANIM_DATA"
CLIP_FOLDERS = ("talking", "driving")


def _candidates() -> list[Path]:
    checkout = Path(__file__).resolve().parents[3]  # src/faceanim/eval/data.py -> the checkout
    return [Path.cwd().parent / "shared" / "data", checkout.parent / "shared" / "data"]


def data_folder(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``$FACEANIM_DATA``, else ``shared/data`` beside the working directory or the checkout.

    The first existing default wins; if none exists the first is returned, so a caller's error names it.
    """
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    found = [p for p in _candidates() if p.is_dir()]
    return (found or _candidates())[0].resolve()


def video_files(folder: Path) -> list[Path]:
    """Every file faceanim reads as video in ``folder`` (.mp4, .mpg, .mov, ...), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_video_path(p))
