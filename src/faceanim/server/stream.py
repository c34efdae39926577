"""WebSocket streaming: one prepared source per session, driving frames in, animated frames out.

Protocol (``/v1/stream``; options as query parameters, ``?token=`` when the server has one):

1. the client sends the portrait (JPEG/PNG/WebP) as the first binary message;
   the server answers ``{"type": "ready", "width": W, "height": H}``;
2. the client sends driving frames, each a binary JPEG/PNG/WebP message;
   for each frame it renders, the server sends ``{"type": "frame", "seq": N, "status": S, "dropped": D}``
   (N = the driving frame's 0-based number) followed by the animated frame as a binary JPEG that carries
   the provenance mark (a JPEG comment) unless ``provenance=false``;
3. ``{"type": "end"}`` ends the session: the server answers ``{"type": "end", "stats": {...}}`` and closes.

A live client should keep one or two frames in flight (send a new camera frame only when fewer are waiting for
their result): latency then stays at about one render. With ``?driver=audio`` the client sends 16 kHz PCM
instead of frames (see :mod:`faceanim.server.speech_stream`).

Back-pressure: frames are rendered by the engine's :class:`~faceanim.pipeline.engine.LiveStream`; when the
renderer is behind, the oldest waiting frame is dropped (``dropped`` counts them), so a session holds at
most two waiting frames whatever the client sends. Errors are ``{"type": "error", "message": ...}``; a bad
portrait, an oversized message or a protocol error also closes the session (1003, 1009, 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from faceanim.errors import FaceAnimError
from faceanim.render.registry import default_renderer
from faceanim.server.config import Limits
from faceanim.server.uploads import UploadError, decode_image, image_size, sniff

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_ERROR = 1011
CLOSE_BUSY = 1013


@dataclass(frozen=True)
class StreamOptions:
    """Per-session settings (query parameters of ``/v1/stream``)."""

    renderer: str = field(default_factory=default_renderer)
    driver: str = "video"  # video: JPEG frames in; audio: 16 kHz PCM in (faceanim.server.speech_stream)
    mode: str = "relative"
    expression_scale: float = 1.0
    smoothing: float = 1.0
    crop_only: bool = False
    provenance: bool = True
    quality: int = 85  # output JPEG quality


@dataclass(frozen=True)
class _Out:
    seq: int
    status: str
    jpeg: bytes | None
    error: str | None = None


def jpeg_comment(renderer: str) -> bytes:
    """A JPEG COM segment with the provenance JSON (what ``read_image_metadata`` reads back)."""
    from faceanim.media.provenance import provenance_metadata

    text = json.dumps(provenance_metadata(renderer, mode="stream"), ensure_ascii=True, sort_keys=True).encode()
    return b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text


async def send_result(ws: WebSocket, out: Any, stats: dict[str, int], **fields: Any) -> None:
    """Send one rendered frame (its JSON header with ``fields``, then the JPEG) or its error; count it."""
    if out.error is not None:
        stats["errors"] += 1
        await ws.send_json({"type": "error", "message": out.error})
        return
    stats["rendered"] += 1
    await ws.send_json({"type": "frame", "seq": out.seq, "status": out.status, **fields})
    await ws.send_bytes(out.jpeg)


def encode_jpeg(rgb: np.ndarray, quality: int, comment: bytes | None) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FaceAnimError("cannot encode the output frame")
    data = buf.tobytes()
    return data[:2] + comment + data[2:] if comment else data  # COM right after SOI


def decode_frame(data: bytes, limits: Limits) -> np.ndarray:
    """A driving frame (JPEG/PNG/WebP bytes) as RGB uint8, after checking its type and pixel count."""
    kind = sniff(data[:64])
    if kind is None or kind.kind != "image" or kind.suffix not in (".jpg", ".png", ".webp"):
        raise UploadError(415, "driving frames must be JPEG, PNG or WebP images")
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception:
        raise UploadError(400, "cannot read the driving frame (corrupt)") from None
    if w * h > limits.frame_pixels:
        raise UploadError(413, f"driving frame is {w}x{h}, more than {limits.frame_pixels / 1e6:.1f} megapixels")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UploadError(400, "cannot decode the driving frame (corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def prepare_source(data: bytes, options: StreamOptions, limits: Limits) -> Any:
    """The session's Animator from the portrait bytes (stored briefly in a private temp dir to be read)."""
    from faceanim.motion.transfer import TransferConfig
    from faceanim.pipeline.animator import Animator, AnimatorConfig

    kind = sniff(data[:64])
    if kind is None or kind.kind != "image":
        raise UploadError(415, "source: the first message must be the portrait (JPEG, PNG, WebP, BMP or TIFF)")
    with tempfile.TemporaryDirectory(prefix="faceanim-ws-") as tmp:
        path = Path(tmp) / f"source{kind.suffix}"
        path.write_bytes(data)
        image_size(path, "source", limits.image_pixels)
        image = decode_image(path, "source", limits.image_pixels)
    config = AnimatorConfig(
        renderer=options.renderer,
        crop_only=options.crop_only,
        transfer=TransferConfig(
            mode=options.mode,  # type: ignore[arg-type]
            expression_scale=options.expression_scale,
        ),
    )
    try:
        return Animator.prepare(image, config, 0, path="source")
    except FaceAnimError as e:  # no face, or a renderer that cannot load (no server path is shown)
        raise UploadError(422, str(e) if e.path == "source" else e.message) from None


class _Renderer:
    """Decode → session (track, smooth, transfer, render, paste-back) → JPEG, on the LiveStream's worker thread."""

    def __init__(self, animator: Any, options: StreamOptions, limits: Limits) -> None:
        from faceanim.pipeline.session import Session, SessionConfig

        self.session = Session(animator, SessionConfig(smoothing=options.smoothing, live=True))
        self.options = options
        self.limits = limits
        self.comment = jpeg_comment(options.renderer) if options.provenance else None

    def __call__(self, item: tuple[int, bytes], capture_time: float) -> list[_Out]:
        seq, data = item
        try:
            image = decode_frame(data, self.limits)
        except UploadError as e:
            return [_Out(seq, "error", None, f"frame {seq}: {e.message}")]
        frames = self.session.push_image(image, capture_time, seq)
        return [_Out(f.payload, f.status, encode_jpeg(f.image, self.options.quality, self.comment)) for f in frames]

    def close(self) -> None:
        self.session.close()


async def _close(ws: WebSocket, code: int, message: str | None = None) -> None:
    with contextlib.suppress(Exception):
        if message is not None:
            await ws.send_json({"type": "error", "message": message})
        if ws.client_state != WebSocketState.DISCONNECTED:
            await ws.close(code)


async def _receive(ws: WebSocket, idle: float) -> dict:
    return await asyncio.wait_for(ws.receive(), timeout=idle)


async def run_session(ws: WebSocket, options: StreamOptions, limits: Limits, executor: Executor) -> dict[str, int]:
    """Serve one accepted WebSocket until the client ends it, disconnects or breaks the protocol."""
    from faceanim.pipeline.engine import LiveStream

    loop = asyncio.get_running_loop()
    stats = {"received": 0, "rendered": 0, "dropped": 0, "errors": 0}
    try:
        first = await _receive(ws, limits.idle_seconds)
    except (TimeoutError, WebSocketDisconnect):
        await _close(ws, CLOSE_POLICY, "no portrait received")
        return stats
    if first.get("type") == "websocket.disconnect":
        return stats
    data = first.get("bytes")
    if not data:
        await _close(ws, CLOSE_POLICY, "source: the first message must be the portrait as a binary message")
        return stats
    if len(data) > limits.upload_bytes:
        await _close(ws, CLOSE_TOO_BIG, "source: the portrait is larger than the upload limit")
        return stats
    try:
        animator = await loop.run_in_executor(executor, prepare_source, data, options, limits)
    except UploadError as e:
        await _close(ws, CLOSE_UNSUPPORTED, e.message)
        return stats
    if options.driver == "audio":
        return await _speech_session(ws, animator, options, limits, executor, stats)
    renderer = _Renderer(animator, options, limits)
    stream = LiveStream(renderer, queue_size=1)
    h, w = animator.neutral().shape[:2]
    await ws.send_json({"type": "ready", "width": int(w), "height": int(h)})
    ended = asyncio.Event()
    start = time.monotonic()

    async def reader() -> None:
        try:
            while True:
                msg = await _receive(ws, limits.idle_seconds)
                if msg.get("type") == "websocket.disconnect":
                    return
                if msg.get("bytes") is not None:
                    frame = msg["bytes"]
                    if len(frame) > limits.frame_bytes:
                        await _close(ws, CLOSE_TOO_BIG, f"frame {stats['received']}: larger than the frame limit")
                        return
                    stream.submit((stats["received"], frame), time.monotonic() - start)
                    stats["received"] += 1
                    continue
                try:
                    control = json.loads(msg.get("text") or "")
                except ValueError:
                    control = None
                if isinstance(control, dict) and control.get("type") == "end":
                    return
                await ws.send_json({"type": "error", "message": 'unknown message; send frames or {"type": "end"}'})
        except (TimeoutError, WebSocketDisconnect):
            return
        finally:
            ended.set()

    async def writer() -> None:
        while True:
            out = await loop.run_in_executor(executor, stream.get, 0.05)
            if out is None:
                counts = stream.stats
                if not ended.is_set() or counts["submitted"] != counts["rendered"] + counts["dropped"]:
                    continue
                out = await loop.run_in_executor(executor, stream.get, 0.2)  # the last one may be on its way
                if out is None:
                    return
            await send_result(ws, out, stats, dropped=stream.stats["dropped"])

    writing = asyncio.ensure_future(writer())
    try:
        await reader()
        await asyncio.wait_for(writing, timeout=30.0)
        stats["dropped"] = stream.stats["dropped"]
        if ws.client_state == WebSocketState.CONNECTED:
            await ws.send_json({"type": "end", "stats": stats})
            await ws.close(CLOSE_NORMAL)
    except (WebSocketDisconnect, RuntimeError, TimeoutError, OSError):
        pass  # the client went away (or stopped reading): nothing more to send
    except FaceAnimError as e:  # raised by the stream's worker (e.g. a frame the tracker cannot take)
        await _close(ws, CLOSE_UNSUPPORTED, e.message)
    except Exception:  # a bug: logged here, the client gets one line and the other sessions go on
        log.exception("stream session failed")
        await _close(ws, CLOSE_ERROR, "internal error")
    finally:
        if not writing.done():
            writing.cancel()
        stream.close()
        await loop.run_in_executor(executor, renderer.close)
    return stats


async def _speech_session(ws: WebSocket, animator: Any, options: StreamOptions, limits: Limits, executor: Executor,
                          stats: dict[str, int]) -> dict[str, int]:
    from faceanim.server import speech_stream

    loop = asyncio.get_running_loop()
    try:
        model = await loop.run_in_executor(executor, speech_stream.load_speech_model)
    except FaceAnimError:
        await _close(ws, CLOSE_UNSUPPORTED, "speech streaming needs the speech pipeline and its weights")
        return stats
    comment = jpeg_comment(options.renderer) if options.provenance else None
    worker = speech_stream.SpeechWorker(model, animator, options.quality, comment)
    h, w = animator.neutral().shape[:2]
    try:
        await ws.send_json({"type": "ready", "width": int(w), "height": int(h), "fps": 25,
                            "sample_rate": speech_stream.SAMPLE_RATE, "format": "s16le"})
        await speech_stream.run_speech(ws, worker, limits, executor, stats)
        if ws.client_state == WebSocketState.CONNECTED:
            await ws.send_json({"type": "end", "stats": stats})
            await ws.close(CLOSE_NORMAL)
    except (WebSocketDisconnect, RuntimeError, TimeoutError, OSError):
        pass
    finally:
        await loop.run_in_executor(executor, worker.close)
    return stats


def parse_options(params: dict[str, str], renderers: list[str]) -> StreamOptions:
    """StreamOptions from query parameters; FaceAnimError naming the bad one."""
    o = StreamOptions()
    fields: dict[str, Any] = {}
    for key, value in params.items():
        if key == "token":
            continue
        if key == "renderer":
            if value not in renderers:
                raise FaceAnimError(f"renderer must be one of {', '.join(renderers)}")
            fields[key] = value
        elif key == "driver":
            if value not in ("video", "audio"):
                raise FaceAnimError("driver must be video (JPEG frames) or audio (PCM)")
            fields[key] = value
        elif key == "mode":
            if value not in ("relative", "absolute"):
                raise FaceAnimError("mode must be relative or absolute")
            fields[key] = value
        elif key in ("expression_scale", "smoothing"):
            try:
                number = float(value)
            except ValueError:
                raise FaceAnimError(f"{key} must be a number") from None
            if not 0.0 <= number <= 10.0:
                raise FaceAnimError(f"{key} must be between 0 and 10")
            fields[key] = number
        elif key in ("crop_only", "provenance"):
            if value not in ("true", "false"):
                raise FaceAnimError(f"{key} must be true or false")
            fields[key] = value == "true"
        elif key == "quality":
            if not value.isdigit() or not 30 <= int(value) <= 100:
                raise FaceAnimError("quality must be a whole number from 30 to 100")
            fields[key] = int(value)
        else:
            raise FaceAnimError(f"unknown option {key[:40]!r}")
    return replace(o, **fields)
