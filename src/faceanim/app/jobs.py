"""Render jobs started from the app: one call to the pipeline's ``animate_file`` with progress and cancel."""

from __future__ import annotations

import inspect
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from faceanim.app.controls import Controls
from faceanim.pipeline.run import JobReport, animate_file

Progress = Callable[[int, int | None], None]


def _accepts(fn: Callable, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def render_job(portrait: str, driving: str, controls: Controls, out_dir: str | Path, *,
               max_frames: int | None = None, provenance: bool = True, on_progress: Progress | None = None,
               cancel: threading.Event | None = None, suffix: str = ".mp4") -> JobReport:
    """Animate ``portrait`` with ``driving`` into a fresh file in ``out_dir`` (``.png`` for an image driver)."""
    out = Path(out_dir) / f"faceanim-{secrets.token_hex(4)}{suffix}"
    kwargs: dict = {}
    if on_progress is not None and _accepts(animate_file, "on_progress"):
        kwargs["on_progress"] = on_progress
    if cancel is not None and _accepts(animate_file, "cancel"):
        kwargs["cancel"] = cancel
    options = controls.job_options(max_frames=max_frames, provenance=provenance)
    return animate_file(portrait, driving, str(out), options, **kwargs)
