"""Renderers by name, so every interface and the evaluation harness select them the same way."""

from __future__ import annotations

from collections.abc import Callable

from faceanim.render.base import Renderer

_FACTORIES: dict[str, Callable[..., Renderer]] = {}
_USABLE: dict[str, Callable[[], bool]] = {}  # renderers that need optional packages or weights: can they run here?
_CROP_SIZES: dict[str, tuple[int, ...]] = {}  # renderers limited to some crop sizes (a network's input size)
# The default is the first of these that can run: the trained network where torch and its weights are installed,
# the analytic renderer (no optional dependency) everywhere else.
DEFAULT_ORDER = ("mobileportrait", "analytic")
DEFAULT_HELP = "mobileportrait where torch and its weights are installed, else analytic"


def register_renderer(name: str, usable: Callable[[], bool] | None = None, crop_sizes: tuple[int, ...] = ()
                      ) -> Callable[[Callable[..., Renderer]], Callable[..., Renderer]]:
    """Register a factory under ``name``; ``usable`` (optional) says whether it can run on this install,
    ``crop_sizes`` (optional) which crop sizes it renders."""
    def deco(factory: Callable[..., Renderer]) -> Callable[..., Renderer]:
        _FACTORIES[name] = factory
        if usable is not None:
            _USABLE[name] = usable
        if crop_sizes:
            _CROP_SIZES[name] = crop_sizes
        return factory

    return deco


def renderer_usable(name: str, crop_size: int | None = None) -> bool:
    """Whether ``name`` is registered and has what it needs here (optional packages, weights), for crops of
    ``crop_size`` (None: any)."""
    _load_builtin()
    if name not in _FACTORIES or not _USABLE.get(name, lambda: True)():
        return False
    return crop_size is None or crop_size in _CROP_SIZES.get(name, (crop_size,))


def default_renderer(crop_size: int = 256) -> str:
    """The renderer every interface uses unless told otherwise, for crops of ``crop_size`` (``DEFAULT_ORDER``)."""
    return next(n for n in DEFAULT_ORDER if renderer_usable(n, crop_size))


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
