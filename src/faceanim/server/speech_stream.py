"""Speech over the WebSocket (``/v1/stream?driver=audio``): PCM chunks in, the talking portrait out.

After ``ready`` the client sends raw PCM (16-bit little-endian, mono, 16 kHz) in binary messages of any length;
the server answers ``{"type": "frame", "seq": N, "time": T, "status": "speech"|"silence", "dropped": 0}`` and a
JPEG for every 25-fps frame, in order (speech frames are never dropped: lips must stay in sync). The speech
pipeline works on windows of audio, so a frame arrives about ``WINDOW`` frames (2 s) after its audio. Every queue
is bounded: a client that sends faster than the portrait is rendered is held back by TCP, not buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from faceanim.errors import FaceAnimError
from faceanim.server.config import Limits

SAMPLE_RATE = 16000
WINDOW, STRIDE = 50, 25  # frames of audio per network window, and between windows (25 fps): ~2 s of latency
_END = object()


@dataclass(frozen=True)
class _Frame:
    seq: int
    time: float
    status: str
    jpeg: bytes | None
    error: str | None = None


@functools.lru_cache(maxsize=1)
def load_speech_model() -> Any:
    """The audio-to-motion network, loaded once per process (FaceAnimError if it or torch is missing)."""
    from faceanim.audio.weights import load_audio2motion

    return load_audio2motion(None)


class SpeechWorker:
    """Turns queued PCM chunks into JPEG frames on its own thread: speech → motion → render → paste-back → JPEG."""

    def __init__(self, model: Any, animator: Any, quality: int, comment: bytes | None, queue_size: int = 8) -> None:
        self.inbox: queue.Queue = queue.Queue(maxsize=queue_size)
        self.outbox: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._model, self._animator, self._quality, self._comment = model, animator, quality, comment
        self._thread = threading.Thread(target=self._work, daemon=True, name="faceanim-speech")
        self._thread.start()

    def _chunks(self) -> Iterator[np.ndarray]:
        while not self._stop.is_set():
            try:
                item = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self.outbox.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _work(self) -> None:
        from faceanim.audio.generate import generate, speech_input
        from faceanim.audio.targets import style_vector
        from faceanim.motion.types import Motion
        from faceanim.pipeline import speak
        from faceanim.server.stream import encode_jpeg

        try:
            style = speak.SpeechStyle()
            src = self._animator.source.state
            reference = Motion.from_state(src)
            lower = speak._lower_face_weights()
            blinks = speak._blink_track(-1, style.blink_rate, np.random.default_rng([style.seed, 1]))
            frames = generate(self._model, speech_input(self._chunks()), style_vector(src.expression),
                              seed=style.seed, window=WINDOW, stride=STRIDE)
            for frame, blink in zip(frames, blinks, strict=False):
                motion = speak.motion_from_speech(src, frame, style, blink, lower)
                image = self._animator.animate(motion, reference).image
                status = "speech" if frame.gate > 0.5 else "silence"
                self._put(_Frame(frame.index, frame.time, status, encode_jpeg(image, self._quality, self._comment)))
        except FaceAnimError as e:
            self._put(_Frame(-1, 0.0, "error", None, str(e)))
        finally:
            self._put(_END)

    def feed(self, item: Any) -> None:
        """Queue a chunk (or the end); blocks while the inbox is full, gives up if the worker has stopped."""
        while self._thread.is_alive():
            try:
                self.inbox.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> Any:
        """The next frame, or the end marker once the worker is done."""
        while True:
            try:
                return self.outbox.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self.outbox.empty():
                    return _END

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def pcm_chunk(data: bytes) -> np.ndarray:
    """16-bit little-endian mono PCM → float32 in [-1, 1]."""
    if len(data) % 2:
        raise FaceAnimError("audio chunks must be 16-bit PCM (an even number of bytes)")
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


async def run_speech(ws: WebSocket, worker: SpeechWorker, limits: Limits, executor: Executor,
                     stats: dict[str, int]) -> None:
    """Pump the client's PCM into the worker and its frames back until the end message (or a disconnect)."""
    from faceanim.server.stream import send_result

    loop = asyncio.get_running_loop()

    async def reader() -> None:
        try:
            while True:
                msg = await asyncio.wait_for(ws.receive(), timeout=limits.idle_seconds)
                if msg.get("type") == "websocket.disconnect":
                    return
                if msg.get("bytes") is not None:
                    data = msg["bytes"]
                    if len(data) > limits.frame_bytes:
                        await ws.send_json({"type": "error", "message": "audio chunk larger than the frame limit"})
                        await ws.close(1009)
                        return
                    try:
                        chunk = pcm_chunk(data)
                    except FaceAnimError as e:
                        stats["errors"] += 1
                        await ws.send_json({"type": "error", "message": str(e)})
                        continue
                    stats["received"] += 1
                    await loop.run_in_executor(executor, worker.feed, chunk)  # blocks when full: back-pressure
                    continue
                with contextlib.suppress(ValueError):
                    if json.loads(msg.get("text") or "").get("type") == "end":
                        return
                await ws.send_json({"type": "error", "message": 'unknown message; send PCM or {"type": "end"}'})
        except (TimeoutError, WebSocketDisconnect, AttributeError):
            return
        finally:
            await loop.run_in_executor(executor, worker.feed, _END)

    async def writer() -> None:
        while True:
            out = await loop.run_in_executor(executor, worker.next)
            if out is _END:
                return
            await send_result(ws, out, stats, time=round(out.time, 3), dropped=0)

    writing = asyncio.ensure_future(writer())
    await reader()
    await asyncio.wait_for(writing, timeout=120.0)
