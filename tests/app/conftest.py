"""Fixtures for the web app: the app served in a subprocess on a free localhost port, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FACEANIM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required",
                 # the live tab's webcam: Chromium's built-in test pattern, permission granted without a prompt
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``faceanim app`` running in a subprocess; its URL. The server log goes to out/test-artifacts/app.log."""
    if os.environ.get("CI") != "true":
        pytest.importorskip("gradio", reason="the web app needs gradio (pip install 'faceanim[app]')")
    port = _free_port()
    log_dir = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "app.log", "wb")  # noqa: SIM115 (kept open for the subprocess's lifetime)
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio")), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "faceanim", "app", "--port", str(port), "--max-frames", "60"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"faceanim app exited with {proc.returncode}; see {log_dir / 'app.log'}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("faceanim app did not start within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (skipped locally when missing; a failure under CI)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        _missing(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="faceanim-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1100}, permissions=["camera"],
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
