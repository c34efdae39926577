"""WebSocket streaming: a prepared source, frames in and out, dropping under load, and protocol errors."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from server_helpers import make_client
from starlette.websockets import WebSocketDisconnect


@pytest.fixture(scope="module")
def driving_jpegs(clip) -> list[bytes]:
    cap = cv2.VideoCapture(str(clip("liveportrait_d0.mp4")))
    frames = []
    while len(frames) < 40:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", bgr)[1].tobytes())
    cap.release()
    return frames


def _collect(ws) -> tuple[list[tuple[dict, bytes]], list[dict], dict]:
    """Frames, errors and the end message after ``{"type": "end"}`` was sent."""
    frames, errors = [], []
    while True:
        msg = ws.receive_json()
        if msg["type"] == "frame":
            frames.append((msg, ws.receive_bytes()))
        elif msg["type"] == "error":
            errors.append(msg)
        elif msg["type"] == "end":
            return frames, errors, msg


def _decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def test_stream_animates_each_frame_it_renders(client, face_jpg, driving_jpegs):
    source = _decode(face_jpg)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(face_jpg)
        assert ws.receive_json() == {"type": "ready", "width": 512, "height": 512}
        outputs = []
        for jpeg in driving_jpegs[:8]:  # one at a time: nothing is dropped
            ws.send_bytes(jpeg)
            msg = ws.receive_json()
            assert msg["type"] == "frame"
            outputs.append((msg, ws.receive_bytes()))
        ws.send_json({"type": "end"})
        _, _, end = _collect(ws)
    assert [m["seq"] for m, _ in outputs] == list(range(8))
    assert end["stats"] == {"received": 8, "rendered": 8, "dropped": 0, "errors": 0}
    images = [_decode(j) for _, j in outputs]
    assert all(im.shape == source.shape for im in images)
    # the face moves with the driver: later frames differ from the source where the face is
    assert max(float(np.abs(im.astype(int) - source).mean()) for im in images) > 0.3
    with Image.open(io.BytesIO(outputs[0][1])) as im:  # provenance mark as a JPEG comment
        assert json.loads(im.info["comment"])["faceanim_synthetic"] == "true"


def test_stream_without_provenance(client, face_jpg, driving_jpegs):
    with client.websocket_connect("/v1/stream?provenance=false&quality=60") as ws:
        ws.send_bytes(face_jpg)
        ws.receive_json()
        ws.send_bytes(driving_jpegs[0])
        assert ws.receive_json()["type"] == "frame"
        with Image.open(io.BytesIO(ws.receive_bytes())) as im:
            assert "comment" not in im.info
        ws.send_json({"type": "end"})
        _collect(ws)


def test_a_fast_client_gets_frames_dropped_not_queued(client, face_jpg, driving_jpegs):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(face_jpg)
        ws.receive_json()
        for jpeg in driving_jpegs:  # 40 frames as fast as possible
            ws.send_bytes(jpeg)
        ws.send_json({"type": "end"})
        frames, errors, end = _collect(ws)
    stats = end["stats"]
    assert not errors and stats["received"] == len(driving_jpegs)
    assert stats["dropped"] > 0 and stats["rendered"] == len(frames) > 0
    assert stats["rendered"] + stats["dropped"] == stats["received"]
    seqs = [m["seq"] for m, _ in frames]
    assert seqs == sorted(seqs) and seqs[-1] == len(driving_jpegs) - 1  # the newest frame is always rendered


def test_corrupt_frame_is_reported_and_the_session_goes_on(client, face_jpg, driving_jpegs):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(face_jpg)
        ws.receive_json()
        ws.send_bytes(driving_jpegs[0][:200])
        msg = ws.receive_json()
        assert msg["type"] == "error" and msg["message"].startswith("frame 0")
        ws.send_bytes(b"GIF89a not a frame")
        assert "JPEG, PNG or WebP" in ws.receive_json()["message"]
        ws.send_bytes(driving_jpegs[1])
        assert ws.receive_json()["seq"] == 2
        ws.receive_bytes()
        ws.send_text("hello")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "end"})
        _, _, end = _collect(ws)
    assert end["stats"]["errors"] == 2 and end["stats"]["rendered"] == 1


def _closed_with(ws) -> tuple[dict, int]:
    msg = ws.receive_json()
    with pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_json()
    return msg, exc.value.code


def test_bad_portraits_close_the_session(client, faceless_png, face_jpg):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text("hello")
        msg, code = _closed_with(ws)
        assert code == 1008 and "portrait" in msg["message"]
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(faceless_png)
        msg, code = _closed_with(ws)
        assert code == 1003 and "no face" in msg["message"]
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(b"MZ\x90\x00 an executable")
        msg, code = _closed_with(ws)
        assert code == 1003
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(face_jpg[:500])
        msg, code = _closed_with(ws)
        assert code == 1003 and msg["message"].startswith("source:")


def test_oversized_frame_closes_the_session(client, face_jpg):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(face_jpg)
        ws.receive_json()
        ws.send_bytes(b"\xff\xd8\xff" + b"\0" * (600 * 1024))  # over the 512 KB test frame limit
        msg, code = _closed_with(ws)
        assert code == 1009 and "larger" in msg["message"]


def test_bad_options(client):
    for query in ("renderer=../x", "mode=sideways", "smoothing=-1", "quality=5", "surprise=1"):
        with client.websocket_connect(f"/v1/stream?{query}") as ws:
            msg, code = _closed_with(ws)
            assert code == 1008 and msg["type"] == "error", query


def test_session_limit(face_jpg):
    from server_helpers import TEST_LIMITS

    with make_client() as c:
        opened = [c.websocket_connect("/v1/stream") for _ in range(TEST_LIMITS.sessions)]
        sockets = [o.__enter__() for o in opened]
        for ws in sockets:
            ws.send_bytes(face_jpg)
            assert ws.receive_json()["type"] == "ready"
        with c.websocket_connect("/v1/stream") as extra:
            msg, code = _closed_with(extra)
            assert code == 1013 and "sessions are running" in msg["message"]
        for o, ws in zip(opened, sockets, strict=True):
            ws.send_json({"type": "end"})
            _collect(ws)
            o.__exit__(None, None, None)


def test_clients_that_vanish_free_their_session(face_jpg, driving_jpegs):
    from server_helpers import TEST_LIMITS

    with make_client() as c:
        for _ in range(TEST_LIMITS.sessions + 2):  # more abrupt disconnects than there are session slots
            with c.websocket_connect("/v1/stream") as ws:
                ws.send_bytes(face_jpg)
                assert ws.receive_json()["type"] == "ready"
                for jpeg in driving_jpegs[:5]:
                    ws.send_bytes(jpeg)
            # left without {"type": "end"} and without reading the frames
        with c.websocket_connect("/v1/stream") as ws:
            ws.send_bytes(face_jpg)
            assert ws.receive_json()["type"] == "ready"
            ws.send_bytes(driving_jpegs[0])
            assert ws.receive_json()["type"] == "frame"
            ws.receive_bytes()
            ws.send_json({"type": "end"})
            assert _collect(ws)[2]["stats"]["rendered"] == 1


def test_stream_token(face_jpg):
    token = "s3cret-token-0123456789"
    with make_client(host="0.0.0.0", token=token) as c:
        with pytest.raises(WebSocketDisconnect) as exc, c.websocket_connect("/v1/stream") as ws:
            ws.receive_json()
        assert exc.value.code == 1008
        with c.websocket_connect(f"/v1/stream?token={token}") as ws:
            ws.send_bytes(face_jpg)
            assert ws.receive_json()["type"] == "ready"
            ws.send_json({"type": "end"})
            _collect(ws)


def test_speech_stream(client, face_jpg, shared_data):
    from faceanim.media.audio import read_audio
    from faceanim.server.app import speech_available

    if not speech_available():
        pytest.skip("the speech pipeline (torch + audio-to-motion weights) is not installed")
    pcm = (np.clip(read_audio(shared_data / "audio" / "dreamtalk_German1.wav")[:32000], -1, 1) * 32767)
    pcm = pcm.astype("<i2").tobytes()  # 2 s of real speech, 16 kHz mono s16le
    with client.websocket_connect("/v1/stream?driver=audio") as ws:
        ws.send_bytes(face_jpg)
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["sample_rate"] == 16000 and ready["fps"] == 25
        for i in range(0, len(pcm), 6400):  # 0.2 s chunks
            ws.send_bytes(pcm[i:i + 6400])
        ws.send_bytes(b"\x01\x02\x03")  # odd length: not 16-bit PCM
        ws.send_json({"type": "end"})
        frames, errors, end = _collect(ws)
    assert len(errors) == 1 and "16-bit" in errors[0]["message"]
    assert [m["seq"] for m, _ in frames] == list(range(50))  # every 25-fps frame, in order, none dropped
    assert {m["status"] for m, _ in frames} <= {"speech", "silence"} and any(m["status"] == "speech" for m, _ in frames)
    images = np.stack([_decode(j) for _, j in frames])
    assert images.shape == (50, 512, 512, 3)
    assert float(np.abs(np.diff(images.astype(np.int16), axis=0)).mean()) > 0.05  # the mouth moves
    assert end["stats"]["rendered"] == 50


def test_concurrent_sessions_do_not_interfere(client, face_jpg, portrait, driving_jpegs):
    other_jpg = portrait("liveportrait_s1.jpg").read_bytes()  # 1145x1145, another person
    sources = [_decode(face_jpg), _decode(other_jpg)]
    with client.websocket_connect("/v1/stream") as a, client.websocket_connect("/v1/stream?renderer=identity") as b:
        for ws, jpg in ((a, face_jpg), (b, other_jpg)):
            ws.send_bytes(jpg)
            assert ws.receive_json()["type"] == "ready"
        outputs: list[list[np.ndarray]] = [[], []]
        for jpeg in driving_jpegs[:6]:  # interleaved frames
            for k, ws in enumerate((a, b)):
                ws.send_bytes(jpeg)
                assert ws.receive_json()["type"] == "frame"
                outputs[k].append(_decode(ws.receive_bytes()))
        for ws in (a, b):
            ws.send_json({"type": "end"})
            _collect(ws)
    for own, frames in zip(sources, outputs, strict=True):
        assert all(f.shape == own.shape for f in frames)  # each session animates its own portrait
        assert max(float(np.abs(f.astype(int) - own).mean()) for f in frames) < 12  # recognisably that portrait
    # the identity renderer (session b) repeats its source; the analytic one (session a) moves the face
    assert max(float(np.abs(f.astype(int) - sources[1]).mean()) for f in outputs[1]) < 1.5
