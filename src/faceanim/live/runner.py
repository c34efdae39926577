"""Run live: capture in one thread, the engine's :class:`LiveStream` renders (dropping what it cannot keep up
with), outputs go to the sinks as they come; every output's capture stamp gives its glass-to-glass latency."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from faceanim.live.capture import Capture
from faceanim.pipeline.engine import LiveStream
from faceanim.pipeline.session import Session
from faceanim.render.annotate import draw_text


class Sink(Protocol):
    def write(self, image: np.ndarray, capture_time: float) -> None: ...

    def close(self, error: BaseException | None = None) -> None: ...


@dataclass(frozen=True)
class LiveSettings:
    overlay: bool = False  # draw FPS, latency and drop share on the output
    seconds: float | None = None  # stop after this long (None: until the input ends or Ctrl+C)
    max_frames: int | None = None  # stop after this many captured frames
    queue_size: int = 2  # frames waiting for the renderer before the oldest is dropped
    warmup_seconds: float = 1.0  # excluded from the FPS and latency statistics (model start-up)


@dataclass(frozen=True)
class LiveReport:
    captured: int
    rendered: int
    dropped: int
    seconds: float  # wall time from the first capture to the last output
    fps: float  # sustained output frames per second after the warm-up
    latency_median_ms: float | None
    latency_p95_ms: float | None
    input_fps: float

    @property
    def drop_share(self) -> float:
        return self.dropped / self.captured if self.captured else 0.0

    def as_dict(self) -> dict:
        return {"captured": self.captured, "rendered": self.rendered, "dropped": self.dropped,
                "drop_share": round(self.drop_share, 4), "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "input_fps": round(self.input_fps, 2),
                "latency_ms": {"median": _round(self.latency_median_ms), "p95": _round(self.latency_p95_ms)}}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


class _Meter:
    """Rolling FPS and latency for the overlay, and every post-warm-up sample for the report."""

    def __init__(self, warmup: float) -> None:
        self.warmup = warmup
        self.first_capture: float | None = None
        self.outputs: list[float] = []  # output times after the warm-up
        self.latencies: list[float] = []
        self._recent: deque[float] = deque(maxlen=30)
        self.last_latency: float | None = None

    def add(self, capture_time: float, now: float) -> None:
        self.last_latency = now - capture_time
        self._recent.append(now)
        if self.first_capture is not None and capture_time - self.first_capture >= self.warmup:
            self.outputs.append(now)
            self.latencies.append(self.last_latency)

    def rolling_fps(self) -> float:
        r = self._recent
        return (len(r) - 1) / (r[-1] - r[0]) if len(r) > 1 and r[-1] > r[0] else 0.0


def _overlay(image: np.ndarray, meter: _Meter, stream: LiveStream) -> np.ndarray:
    s = stream.stats
    share = s["dropped"] / s["submitted"] if s["submitted"] else 0.0
    lat = "-" if meter.last_latency is None else f"{1000 * meter.last_latency:.0f} ms"
    return draw_text(image, f"{meter.rolling_fps():.1f} fps  latency {lat}  dropped {100 * share:.0f}%")


def run_live(session: Session, capture: Capture, sinks: Sequence[Sink], settings: LiveSettings = LiveSettings(),
             stop: threading.Event | None = None) -> LiveReport:
    """Animate ``capture``'s frames live until it ends, ``settings`` say stop, ``stop`` is set or Ctrl+C."""
    stop = stop or threading.Event()
    meter = _Meter(settings.warmup_seconds)
    stream = LiveStream(session, queue_size=settings.queue_size)
    captured = [0]
    capture_done = threading.Event()
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            deadline = None
            for frame in capture:
                if meter.first_capture is None:
                    meter.first_capture = frame.capture_time
                    deadline = None if settings.seconds is None else frame.capture_time + settings.seconds
                if stop.is_set() or (deadline is not None and frame.capture_time > deadline):
                    break
                stream.submit(frame.image, frame.capture_time)
                captured[0] += 1
                if settings.max_frames is not None and captured[0] >= settings.max_frames:
                    break
        except BaseException as exc:
            failure.append(exc)
        finally:
            capture_done.set()

    feeder = threading.Thread(target=feed, daemon=True, name="faceanim-capture")
    error: BaseException | None = None
    feeder.start()
    try:
        while True:
            out = stream.get(timeout=0.05)
            if out is None:
                s = stream.stats
                if capture_done.is_set() and s["rendered"] + s["dropped"] >= s["submitted"]:
                    break
                if stop.is_set() and capture_done.is_set():
                    break
                continue
            image = _overlay(out.image, meter, stream) if settings.overlay else out.image
            for sink in sinks:
                sink.write(image, out.payload)
            meter.add(out.payload, time.monotonic())
        if failure:
            raise failure[0]
    except KeyboardInterrupt:  # Ctrl+C is how a live run is normally ended: finish the outputs cleanly
        stop.set()
    except BaseException as exc:
        error = exc
        stop.set()
        raise
    finally:
        stop.set()
        feeder.join(timeout=5.0)
        stream.close()
        capture.close()
        for sink in sinks:
            if error is None:
                sink.close(None)
            else:
                with contextlib.suppress(Exception):
                    sink.close(error)
    return _report(meter, stream, captured[0], float(capture.fps))


def _report(meter: _Meter, stream: LiveStream, captured: int, input_fps: float) -> LiveReport:
    s = stream.stats
    outs, lats = meter.outputs, np.asarray(meter.latencies) * 1000.0
    fps = (len(outs) - 1) / (outs[-1] - outs[0]) if len(outs) > 1 and outs[-1] > outs[0] else 0.0
    seconds = (outs[-1] - meter.first_capture) if outs and meter.first_capture is not None else 0.0
    return LiveReport(
        captured=captured, rendered=s["rendered"], dropped=max(0, captured - s["rendered"]), seconds=seconds,
        fps=fps, latency_median_ms=float(np.median(lats)) if lats.size else None,
        latency_p95_ms=float(np.percentile(lats, 95)) if lats.size else None, input_fps=input_fps,
    )
