"""Helpers shared by the server tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from faceanim.server.config import MB, Limits, ServerConfig

TEST_LIMITS = Limits(upload_bytes=1 * MB, image_pixels=1200 * 1200, seconds=5.0, frame_bytes=512 * 1024,
                     active_jobs=4, sessions=3, idle_seconds=20.0)


def make_client(**config):
    """A TestClient over a fresh app (use it with ``with`` so the app starts and cleans up)."""
    from fastapi.testclient import TestClient

    from faceanim.server.app import create_app

    config.setdefault("limits", TEST_LIMITS)
    return TestClient(create_app(ServerConfig(**config)))


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def wait_for(client, job_id: str, timeout: float = 120.0, headers: dict | None = None) -> dict:
    """Poll a job until it leaves queued/running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/jobs/{job_id}", headers=headers or {})
        assert r.status_code == 200, r.text
        status = r.json()
        if status["state"] not in ("queued", "running"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
