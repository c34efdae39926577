"""The streaming engine: pipeline stages in threads joined by bounded queues, so the stages of a job
(decode | track | render + paste-back | encode) run at once over both cores, with flat memory.

mediapipe, OpenCV, PyAV and most of NumPy release the GIL, so threads overlap the heavy work. A stage is a
function from an iterator of items to an iterator of items; :func:`run_stages` chains them, preserving order.
:class:`LiveStream` is the live variant: input that arrives faster than it can be rendered is dropped (the
oldest waiting frame first), never queued without bound.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from faceanim.errors import Cancelled

Stage = Callable[[Iterator[Any]], Iterator[Any]]

_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Blocking put that gives up when the pipeline stops."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _drain(q: queue.Queue, stop: threading.Event) -> Iterator[Any]:
    """Items of ``q`` until the end marker; a failure upstream is re-raised here."""
    while True:
        try:
            item = q.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if item is _END:
            return
        if isinstance(item, _Failure):
            raise item.error
        yield item


def _pump(items: Iterable[Any], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(out, item, stop):
                return
        _put(out, _END, stop)
    except BaseException as exc:  # handed to the consumer, which raises it in the caller's thread
        _put(out, _Failure(exc), stop)


def run_stages(
    source: Iterable[Any],
    stages: Sequence[Stage],
    *,
    queue_size: int = 4,
    cancel: threading.Event | None = None,
) -> Iterator[Any]:
    """Yield the last stage's items; ``source`` and every stage run in their own threads.

    The caller's loop is the last step (typically the encoder). An exception in any stage is raised here;
    setting ``cancel`` raises :class:`~faceanim.errors.Cancelled`. Closing the iterator early stops every thread.
    """
    stop = threading.Event()
    threads: list[threading.Thread] = []
    q_in: queue.Queue = queue.Queue(maxsize=queue_size)
    threads.append(threading.Thread(target=_pump, args=(source, q_in, stop), daemon=True, name="faceanim-source"))
    upstream = q_in
    for i, stage in enumerate(stages):
        q_out: queue.Queue = queue.Queue(maxsize=queue_size)
        items = stage(_drain(upstream, stop))
        threads.append(threading.Thread(target=_pump, args=(items, q_out, stop), daemon=True, name=f"faceanim-{i}"))
        upstream = q_out
    for t in threads:
        t.start()
    try:
        for item in _drain(upstream, stop):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            yield item
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5.0)


class LiveStream:
    """Animate live frames on a worker thread; ``submit`` never blocks and ``get`` returns the newest results.

    ``render`` is a :class:`~faceanim.pipeline.session.Session` (its ``push_image``, with the capture time as the
    driver's clock and as the output's payload, for latency) or any function ``(image, capture_time) -> list``.
    When the worker is busy and ``queue_size`` frames already wait, the oldest waiting frame is dropped, so
    latency stays flat.
    """

    def __init__(self, render: Any, queue_size: int = 2) -> None:
        if hasattr(render, "push_image"):
            session = render
            self._render: Callable[[Any, float], list[Any]] = lambda image, t: session.push_image(image, t, t)
        else:
            self._render = render
        self._in: queue.Queue = queue.Queue(maxsize=queue_size)
        self._out: queue.Queue = queue.Queue(maxsize=max(queue_size, 2) * 2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.submitted = 0
        self.dropped = 0
        self.rendered = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True, name="faceanim-live")
        self._thread.start()

    @property
    def stats(self) -> dict[str, int]:
        return {"submitted": self.submitted, "dropped": self.dropped, "rendered": self.rendered}

    def submit(self, image: Any, capture_time: float | None = None) -> bool:
        """Queue a frame; returns False if a waiting frame had to be dropped to make room (or the stream is closed)."""
        if self._stop.is_set():
            return False
        t = time.monotonic() if capture_time is None else capture_time
        with self._lock:
            self.submitted += 1
            kept = True
            while True:
                try:
                    self._in.put_nowait((image, t))
                    return kept
                except queue.Full:
                    try:
                        self._in.get_nowait()
                        self.dropped += 1
                        kept = False
                    except queue.Empty:
                        pass

    def get(self, timeout: float | None = None) -> Any | None:
        """The next rendered output, or None after ``timeout`` seconds."""
        if self.error is not None:
            raise self.error
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            return None

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                image, t = self._in.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                outputs = self._render(image, t)
            except BaseException as exc:
                self.error = exc
                self._stop.set()
                return
            for out in outputs:
                self.rendered += 1
                while True:
                    try:
                        self._out.put_nowait(out)
                        break
                    except queue.Full:  # nobody is reading: keep the newest results only
                        with contextlib.suppress(queue.Empty):
                            self._out.get_nowait()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
