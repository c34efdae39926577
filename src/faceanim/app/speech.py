"""Speech-driven renders from the app: one call to the speech stage's ``speak_file``."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from pathlib import Path

from faceanim.app.controls import Controls
from faceanim.app.jobs import prune
from faceanim.errors import FaceAnimError


def render_speech(portrait: str, audio: str, controls: Controls, out_dir: str | Path, *, provenance: bool = True,
                  max_seconds: float | None = None,
                  on_progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Animate ``portrait`` talking ``audio`` into a fresh video in ``out_dir``; returns its path."""
    from faceanim.pipeline.speak import SpeakOptions, SpeechStyle, speak_file

    if controls.face == "all":
        raise FaceAnimError("speech animates one face: choose a face number")
    options = SpeakOptions(animator=controls.animator_config(),
                           style=SpeechStyle(expression_intensity=controls.expression_scale),
                           face_index=int(controls.face), provenance=provenance, max_seconds=max_seconds,
                           progress=False)
    prune(out_dir)
    out = Path(out_dir) / f"faceanim-speech-{secrets.token_hex(4)}.mp4"
    kwargs = {}
    if on_progress is not None and "on_progress" in inspect.signature(speak_file).parameters:
        kwargs["on_progress"] = on_progress
    return speak_file(portrait, audio, str(out), options, **kwargs).output
