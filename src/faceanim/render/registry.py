"""Renderers by name, so every interface and the evaluation harness select them the same way."""

from __future__ import annotations

from collections.abc import Callable

from faceanim.render.base import Renderer

_FACTORIES: dict[str, Callable[..., Renderer]] = {}
_USABLE: dict[str, Callable[[], bool]] = {}  # renderers that need optional packages or weights: can they run here?
# The default is the first of these that can run: the trained network where torch and its weights are installed,
# the analytic renderer (no optional dependency) everywhere else.
DEFAULT_ORDER = ("mobileportrait", "analytic")


def register_renderer(name: str, usable: Callable[[], bool] | None = None
                      ) -> Callable[[Callable[..., Renderer]], Callable[..., Renderer]]:
    """Register a factory under ``name``; ``usable`` (optional) says whether it can run on this install."""
    def deco(factory: Callable[..., Renderer]) -> Callable[..., Renderer]:
        _FACTORIES[name] = factory
        if usable is not None:
            _USABLE[name] = usable
        return factory

    return deco


def renderer_usable(name: str) -> bool:
    """Whether ``name`` is registered and has what it needs here (optional packages, weights)."""
    _load_builtin()
    return name in _FACTORIES and _USABLE.get(name, lambda: True)()


def default_renderer() -> str:
    """The renderer every interface uses unless told otherwise (see ``DEFAULT_ORDER``)."""
    return next(n for n in DEFAULT_ORDER if renderer_usable(n))


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
