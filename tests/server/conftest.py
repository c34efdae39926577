"""Server test fixtures: apps with small limits, driven in-process through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from server_helpers import make_client, png_bytes


@pytest.fixture(scope="module")
def client() -> Iterator:
    """An app with the test limits (the test modules skip themselves when the server extra is missing)."""
    with make_client() as c:
        yield c


@pytest.fixture(scope="session")
def face_jpg(portrait) -> bytes:
    return portrait("liveportrait_s42.jpg").read_bytes()  # 512x512, one face


@pytest.fixture(scope="session")
def faceless_png() -> bytes:
    y, x = np.mgrid[0:256, 0:256]
    return png_bytes(np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8))
