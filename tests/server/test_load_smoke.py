"""A short version of benchmarks/bench_server_load.py: a real ``faceanim serve`` process, 2 concurrent sessions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("websockets")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_server_load.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_server_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_two_sessions_stream_concurrently_without_errors(portrait, clip):
    result = _bench().run_load(portrait("liveportrait_s42.jpg"), clip("liveportrait_d0.mp4"), sessions=2,
                               seconds=4.0, fps=15.0, max_frames=60)
    assert result["errors"] == []
    assert len(result["per_session_fps"]) == 2 and min(result["per_session_fps"]) > 0  # both sessions served
    assert result["frames_rendered"] + result["frames_dropped"] <= result["frames_sent"]
    assert result["latency_ms"]["p50"] is not None and result["latency_ms"]["p50"] < result["latency_ms"]["max"] + 1
    assert result["server_rss_mb"]["before"] > 0 and result["server_rss_mb"]["after"] > 0
    assert result["elapsed_seconds"] < 4.0 + 120  # bounded: it stopped by itself
