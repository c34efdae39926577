"""Render jobs started from the app: one call to the pipeline's ``animate_file`` with progress and cancel."""

from __future__ import annotations

import contextlib
import inspect
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from faceanim.app.controls import Controls
from faceanim.pipeline.run import JobReport, animate_file

Progress = Callable[[int, int | None], None]

#: Results older than this are removed from the app's work folder when the next job starts (bounded disk use;
#: the browser keeps its own copy from Gradio's cache, which Gradio expires on the same schedule).
KEEP_SECONDS = 3600.0


def prune(out_dir: str | Path, keep_seconds: float = KEEP_SECONDS) -> int:
    """Delete results in ``out_dir`` older than ``keep_seconds``; returns how many were removed."""
    cutoff = time.time() - keep_seconds
    removed = 0
    for p in Path(out_dir).glob("faceanim-*"):
        with contextlib.suppress(OSError):
            if p.is_file() and p.stat().st_mtime < cutoff:
                p.unlink()
                removed += 1
    return removed


def _accepts(fn: Callable, name: str) -> bool:
    return name in inspect.signature(fn).parameters


def render_job(portrait: str, driving: str, controls: Controls, out_dir: str | Path, *,
               max_frames: int | None = None, provenance: bool = True, on_progress: Progress | None = None,
               cancel: threading.Event | None = None, suffix: str = ".mp4") -> JobReport:
    """Animate ``portrait`` with ``driving`` into a fresh file in ``out_dir`` (``.png`` for an image driver)."""
    prune(out_dir)
    out = Path(out_dir) / f"faceanim-{secrets.token_hex(4)}{suffix}"
    kwargs: dict = {}
    if on_progress is not None and _accepts(animate_file, "on_progress"):
        kwargs["on_progress"] = on_progress
    if cancel is not None and _accepts(animate_file, "cancel"):
        kwargs["cancel"] = cancel
    options = controls.job_options(max_frames=max_frames, provenance=provenance)
    return animate_file(portrait, driving, str(out), options, **kwargs)
