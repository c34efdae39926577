"""Renderers by name, so every interface and the evaluation harness select them the same way."""

from __future__ import annotations

from collections.abc import Callable

from faceanim.render.base import Renderer

_FACTORIES: dict[str, Callable[..., Renderer]] = {}


def register_renderer(name: str) -> Callable[[Callable[..., Renderer]], Callable[..., Renderer]]:
    def deco(factory: Callable[..., Renderer]) -> Callable[..., Renderer]:
        _FACTORIES[name] = factory
        return factory

    return deco


def available_renderers() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def create_renderer(name: str, **kwargs: object) -> Renderer:
    """Instantiate a renderer by name (``analytic``, ``tps``, ``identity``, …)."""
    _load_builtin()
    if name not in _FACTORIES:
        raise ValueError(f"unknown renderer {name!r}; available: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](**kwargs)


def _load_builtin() -> None:
    from faceanim.render import analytic, identity, tps  # noqa: F401  (registration side effect)
