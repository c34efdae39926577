"""Shared test fixtures: the sample media under ``../shared/data`` beside the checkout (see its MANIFEST.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from faceanim.eval.data import data_folder

# The sample media sits beside the checkout (/work/main -> /work/shared/data); FACEANIM_DATA overrides.
SHARED_DATA = data_folder().resolve()


def _missing(what: Path) -> None:
    message = f"shared data not found at {what}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared sample-media folder; fails under CI (``CI=true``) and skips elsewhere when it is missing."""
    if not SHARED_DATA.is_dir():
        _missing(SHARED_DATA)
    return SHARED_DATA


def _finder(root: Path, folders: tuple[str, ...]) -> Callable[[str], Path]:
    def find(name: str) -> Path:
        for folder in folders:
            p = root / folder / name
            if p.is_file():
                return p
        _missing(root / folders[0] / name)
        raise AssertionError("unreachable")

    return find


@pytest.fixture(scope="session")
def portrait(shared_data: Path) -> Callable[[str], Path]:
    """``portrait("liveportrait_s42.jpg")`` -> path of a still image in ``portraits/``."""
    return _finder(shared_data, ("portraits",))


@pytest.fixture(scope="session")
def clip(shared_data: Path) -> Callable[[str], Path]:
    """``clip("liveportrait_d0.mp4")`` -> path of a video in ``driving/`` or ``talking/``."""
    return _finder(shared_data, ("driving", "talking"))
