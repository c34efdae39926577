"""A live session on a prepared portrait: the engine's causal :class:`Session`, shared by the CLI and the app."""

from __future__ import annotations

from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.pipeline.session import Session, SessionConfig


def open_session(prepared: Animator, config: AnimatorConfig, smoothing: float = 1.0) -> Session:
    """A live (causal, no look-ahead) session on ``prepared``'s faces, with ``config``'s transfer settings.

    The prepared faces are shared, so a cached portrait starts streaming at once; tracking state is the
    session's own, so several sessions may animate the same portrait.
    """
    animator = Animator(prepared.faces, prepared.renderer, config)
    return Session(animator, SessionConfig(smoothing=smoothing, live=True))
