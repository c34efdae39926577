"""Loopback load test of ``faceanim serve``: N concurrent WebSocket sessions streaming a driving clip for S seconds.

Starts the server as a subprocess on 127.0.0.1, opens the sessions (each sends the portrait, then JPEG frames at
the clip's pace), and reports throughput, glass-to-glass latency percentiles (frame sent → its animated frame
received), dropped frames, errors and the server's memory before and after. Bounded and self-stopping: every
wait has a deadline and the server is stopped at the end whatever happens.

    python benchmarks/bench_server_load.py --sessions 8 --seconds 30 --json out/server_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

DATA = Path(os.environ.get("FACEANIM_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
DEFAULT_SOURCE = DATA / "portraits" / "liveportrait_s42.jpg"  # 512×512
DEFAULT_CLIP = DATA / "driving" / "liveportrait_d10.mp4"  # 512×512, 30 fps


@dataclass
class _Session:
    sent: dict[int, float] = field(default_factory=dict)  # seq -> send time
    latencies: list[float] = field(default_factory=list)
    rendered: int = 0
    dropped: int = 0  # by the server
    skipped: int = 0  # by the client: ``window`` frames were already in flight (a camera frame not sent)
    errors: list[str] = field(default_factory=list)
    ready_seconds: float | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int, key: str = "VmRSS") -> float | None:
    """Resident memory of the server and its children (MB), from /proc."""
    total, found = 0, False
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
                    found = True
    return round(total / 1024, 1) if found else None


def _frames(clip: Path, limit: int) -> tuple[list[bytes], float]:
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    cap.release()
    if not frames:
        raise SystemExit(f"{clip}: no frames could be read")
    return frames, float(fps)


async def _session(url: str, portrait: bytes, frames: list[bytes], fps: float, seconds: float,
                   window: int) -> _Session:
    from websockets.asyncio.client import connect

    s = _Session()
    async with connect(url, max_size=16 * 1024 * 1024, open_timeout=30, close_timeout=5) as ws:
        t0 = time.monotonic()
        await ws.send(portrait)
        ready = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
        if ready.get("type") != "ready":
            s.errors.append(str(ready.get("message", ready)))
            return s
        s.ready_seconds = time.monotonic() - t0
        done = asyncio.Event()

        async def receive() -> None:
            pending_seq = None
            async for message in ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    if pending_seq is not None and pending_seq in s.sent:
                        s.latencies.append(now - s.sent[pending_seq])
                        s.rendered += 1
                    pending_seq = None
                    continue
                msg = json.loads(message)
                if msg["type"] == "frame":
                    pending_seq, s.dropped = msg["seq"], msg["dropped"]
                elif msg["type"] == "error":
                    s.errors.append(msg["message"])
                elif msg["type"] == "end":
                    s.dropped = msg["stats"]["dropped"]
                    done.set()
                    return

        receiver = asyncio.ensure_future(receive())
        start, seq = time.monotonic(), 0
        tick = 0
        while time.monotonic() - start < seconds and not receiver.done():
            in_flight = len(s.sent) - s.rendered - s.dropped
            if window and in_flight >= window:
                s.skipped += 1
            else:
                s.sent[seq] = time.monotonic()
                await ws.send(frames[tick % len(frames)])
                seq += 1
            tick += 1
            await asyncio.sleep(max(0.0, start + tick / fps - time.monotonic()))  # the clip's own pace
        await ws.send(json.dumps({"type": "end"}))
        try:
            await asyncio.wait_for(done.wait(), timeout=30)
        except TimeoutError:
            s.errors.append("no end message within 30 s")
        receiver.cancel()
    return s


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ms = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "p99": round(float(np.percentile(ms, 99)), 1), "max": round(float(ms.max()), 1)}


def run_load(source: Path = DEFAULT_SOURCE, clip: Path = DEFAULT_CLIP, sessions: int = 8, seconds: float = 30.0,
             fps: float | None = None, max_frames: int = 300, renderer: str = "analytic", rounds: int = 1,
             window: int = 2) -> dict:
    """Start ``faceanim serve``, run the sessions (``rounds`` times, one after the other, to tell a leak from
    memory the allocator keeps), stop the server; returns the measurements of all rounds together.

    ``window``: like a well-behaved live client, send a camera frame only while fewer than this many are
    waiting for their result (0: send every frame and let the server drop).
    """
    portrait = Path(source).read_bytes()
    frames, clip_fps = _frames(Path(clip), max_frames)
    fps = fps or clip_fps
    port = _free_port()
    cmd = [sys.executable, "-m", "faceanim", "serve", "--port", str(port), "--sessions", str(sessions), "-q"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read().decode(errors="replace")[-2000:] if server.stderr else ""
                    raise RuntimeError(f"the server did not start: {err}") from None
                time.sleep(0.2)
        rss_before = _rss_mb(server.pid)
        url = f"ws://127.0.0.1:{port}/v1/stream?renderer={renderer}"

        async def everything() -> list[_Session | BaseException]:
            tasks = [_session(url, portrait, frames, fps, seconds, window) for _ in range(sessions)]
            return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=seconds + 120)

        t0 = time.monotonic()
        results: list[_Session | BaseException] = []
        rss_rounds = []
        for _ in range(rounds):
            # the clients' event loop runs on its own thread, so a caller that already runs a loop (a test
            # session after Playwright, a notebook) can still call this
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                results += pool.submit(asyncio.run, everything()).result()
            time.sleep(1.0)
            rss_rounds.append(_rss_mb(server.pid))
        elapsed = time.monotonic() - t0
        rss_after, rss_peak = rss_rounds[-1], _rss_mb(server.pid, "VmHWM")
    finally:
        with contextlib.suppress(ProcessLookupError):
            server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    done = [r for r in results if isinstance(r, _Session)]
    failures = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, _Session)]
    latencies = [x for s in done for x in s.latencies]
    sent = sum(len(s.sent) for s in done)
    captured = sent + sum(s.skipped for s in done)
    rendered = sum(s.rendered for s in done)
    return {
        "sessions": sessions,
        "seconds": seconds,
        "elapsed_seconds": round(elapsed, 2),
        "send_fps_per_session": round(fps, 2),
        "renderer": renderer,
        "window": window,
        "frames_captured": captured,
        "frames_sent": sent,
        "frames_rendered": rendered,
        "frames_dropped": sum(s.dropped for s in done),
        "drop_share": round(1 - rendered / captured, 3) if captured else None,  # of the camera's frames
        "rounds": rounds,
        "throughput_fps": round(rendered / (seconds * rounds), 2),
        "per_session_fps": [round(s.rendered / seconds, 2) for s in done[:sessions]],
        "latency_ms": _percentiles(latencies),
        "ready_seconds_max": round(max((s.ready_seconds or 0.0) for s in done), 2) if done else None,
        "errors": failures + [e for s in done for e in s.errors],
        "server_rss_mb": {"before": rss_before, "after": rss_after, "peak": rss_peak, "after_each_round": rss_rounds},
        "server_exit_code": server.returncode,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--fps", type=float, default=None, help="frames each client sends per second (default: the clip's)")
    p.add_argument("--renderer", default="analytic")
    p.add_argument("--rounds", type=int, default=1, help="run the sessions this many times in a row (leak check)")
    p.add_argument("--window", type=int, default=2,
                   help="frames a client keeps in flight (default 2; 0 = send every frame, the server drops)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    result = run_load(args.source, args.clip, args.sessions, args.seconds, args.fps, renderer=args.renderer,
                      rounds=args.rounds, window=args.window)
    text = json.dumps(result, indent=2)
    if args.json:
        from faceanim.media.atomic import atomic_output

        with atomic_output(args.json) as tmp:
            tmp.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
