"""``measure_live``: live-mode FPS, glass-to-glass latency and drop share on a clip standing in for a camera."""

from __future__ import annotations

from pathlib import Path

from faceanim.live.capture import Capture, CaptureSpec
from faceanim.live.runner import LiveSettings, run_live
from faceanim.live.stream import open_session
from faceanim.media.image import read_image
from faceanim.pipeline.animator import Animator, AnimatorConfig


def measure_live(source: str | Path, camera: str | Path, *, renderer: str = "analytic", seconds: float | None = None,
                 max_frames: int | None = None, overlay: bool = False, smoothing: float = 1.0,
                 queue_size: int = 2, warmup_seconds: float = 1.0) -> dict:
    """Run live mode on ``camera`` (a camera number, clip or URL; a clip is paced at its own frame rate) with no
    output sink and report sustained FPS, median/p95 latency (ms, capture to output) and the drop share."""
    config = AnimatorConfig(renderer=renderer)
    prepared = Animator.prepare(read_image(source), config, path=str(source))
    session = open_session(prepared, config, smoothing)
    capture = Capture(CaptureSpec.parse(str(camera)))
    settings = LiveSettings(overlay=overlay, seconds=seconds, max_frames=max_frames, queue_size=queue_size,
                            warmup_seconds=warmup_seconds)
    try:
        report = run_live(session, capture, [], settings)
    finally:
        session.close()
    return {"source": Path(source).name, "camera": Path(str(camera)).name, "renderer": renderer,
            **report.as_dict()}
