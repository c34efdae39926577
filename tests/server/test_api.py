"""The HTTP job API: every endpoint, real renders, and the bad inputs a public server must refuse cleanly."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from server_helpers import make_client, png_bytes, until, wait_for

from faceanim.errors import FaceAnimError
from faceanim.media.provenance import read_provenance
from faceanim.media.video import write_video
from faceanim.server.config import MB, Limits, ServerConfig


def _frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_health_lists_and_spec(client):
    assert client.get("/v1/health").json()["status"] == "ok"
    assert "analytic" in client.get("/v1/renderers").json()["names"]
    assert "blink" in client.get("/v1/templates").json()["names"]
    spec = client.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 404  # no Swagger UI: it would load assets from a CDN


def test_template_job_renders_a_marked_video(client, face_jpg, tmp_path):
    r = client.post("/v1/jobs", files={"source": ("me.jpg", face_jpg)}, data={"template": "blink", "max_frames": "6"})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done", status
    assert status["frames_done"] == status["frames_total"] == 6
    result = client.get(status["result_url"])
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert _frames(result.content) == 6
    out = tmp_path / "result.mp4"
    out.write_bytes(result.content)
    assert read_provenance(out)["faceanim_synthetic"] == "true"


def test_video_job_follows_the_driving_clip(client, face_jpg, clip):
    video = clip("liveportrait_d5.mp4").read_bytes()  # 480x480, 4.9 s, 135 KB
    r = client.post("/v1/jobs", files={"source": ("me.jpg", face_jpg), "driving": ("d.mp4", video)},
                    data={"max_frames": "5", "provenance": "false"})
    assert r.status_code == 202, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done", status
    result = client.get(status["result_url"])
    assert _frames(result.content) == 5


def test_image_driver_gives_a_png(client, face_jpg, portrait):
    smile = portrait("liveportrait_d9.jpg").read_bytes()
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("b.jpg", smile)})
    assert r.status_code == 202, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done" and status["result_url"].endswith("/result")
    result = client.get(status["result_url"])
    assert result.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(result.content)))
    assert image.shape == (512, 512, 3)


# ---------------------------------------------------------------------------------------------- bad inputs


def test_oversized_upload_and_body(client, face_jpg):
    big = b"\xff\xd8\xff\xe0" + b"\0" * (MB + 10)  # over the 1 MB per-file limit, under the body limit
    r = client.post("/v1/jobs", files={"source": ("big.jpg", big)}, data={"template": "blink"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    huge = b"\0" * (3 * MB + 10)  # over the whole-body limit: refused before parsing
    r = client.post("/v1/jobs", files={"source": ("huge.jpg", huge)}, data={"template": "blink"})
    assert r.status_code == 413


def test_too_many_pixels_and_too_long(client, face_jpg, clip):
    wide = png_bytes(np.zeros((1300, 1300, 3), np.uint8))  # 1.69 MP > the 1.44 MP test limit; small file
    r = client.post("/v1/jobs", files={"source": ("wide.png", wide)}, data={"template": "blink"})
    assert r.status_code == 413 and "megapixels" in r.json()["detail"]
    long_clip = clip("liveportrait_d7.mp4").read_bytes()  # 5.9 s > 5 s
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("d.mp4", long_clip)})
    assert r.status_code == 413 and "lasts" in r.json()["detail"]


def test_wrong_types(client, face_jpg, clip):
    r = client.post("/v1/jobs", files={"source": ("portrait.jpg", b"hello, I am text")}, data={"template": "blink"})
    assert r.status_code == 415
    video = clip("liveportrait_d5.mp4").read_bytes()
    r = client.post("/v1/jobs", files={"source": ("portrait.jpg", video)}, data={"template": "blink"})
    assert r.status_code == 415 and "source" in r.json()["detail"]
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("d.mp4", b"%PDF-1.4 ...")})
    assert r.status_code == 415


def _speech_wav(path, seconds: float = 3.0) -> bytes:
    """The first seconds of a real speech clip as 16 kHz mono 16-bit WAV bytes."""
    import wave

    from faceanim.media.audio import read_audio

    pcm = read_audio(path)[: int(16000 * seconds)]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


def test_speech_job(client, face_jpg, shared_data, tmp_path):
    from faceanim.server.app import speech_available

    wav = _speech_wav(shared_data / "audio" / "dreamtalk_German1.wav")
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("talk.wav", wav)},
                    data={"max_frames": "10"})
    if not speech_available():
        assert r.status_code == 415 and "speech" in r.json()["detail"]
        pytest.skip("the speech pipeline (torch + audio-to-motion weights) is not installed")
    assert r.status_code == 202, r.text
    status = wait_for(client, r.json()["id"], timeout=300)
    assert status["state"] == "done", status
    result = client.get(status["result_url"]).content
    assert _frames(result) == 10  # 0.4 s at the speech pipeline's 25 fps
    with av.open(io.BytesIO(result)) as c:
        assert len(c.streams.audio) == 1  # the speech is muxed in
    (tmp_path / "talk.mp4").write_bytes(result)
    assert read_provenance(tmp_path / "talk.mp4")["faceanim_mode"] == "speech"


def test_corrupt_files(client, face_jpg, clip):
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg[:300])}, data={"template": "blink"})
    assert r.status_code == 400 and r.json()["detail"].startswith("source:")
    truncated = clip("liveportrait_d5.mp4").read_bytes()[:2000]
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("d.mp4", truncated)})
    assert r.status_code == 400 and r.json()["detail"].startswith("driving:")
    r = client.post("/v1/jobs", files={"source": ("a.jpg", b"")}, data={"template": "blink"})
    assert r.status_code == 400


def test_no_face(client, face_jpg, faceless_png):
    r = client.post("/v1/jobs", files={"source": ("a.png", faceless_png)}, data={"template": "blink"})
    assert r.status_code == 422 and r.json()["detail"] == "source: no face found"
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("b.png", faceless_png)})
    assert r.status_code == 422 and r.json()["detail"] == "driving: no face found"


def test_driving_video_without_a_face_fails_the_job_cleanly(client, face_jpg, tmp_path):
    frames = [np.full((128, 128, 3), 40 + 10 * i, np.uint8) for i in range(6)]
    blank = tmp_path / "blank.mp4"
    write_video(blank, frames, 25)
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("b.mp4", blank.read_bytes())})
    assert r.status_code == 202, r.text
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "failed" and status["error"] == "driving.mp4: no face found in any driving frame"
    assert client.get(f"/v1/jobs/{status['id']}/result").status_code == 409


def test_job_errors_never_show_server_paths(tmp_path):
    from faceanim.errors import MediaError, NoFaceError
    from faceanim.server.jobs import public_error

    job = tmp_path / "0123"
    assert public_error(MediaError("cannot decode", path=job / "driving.mp4", frame=7), job) == \
        "driving.mp4 (frame 7): cannot decode"
    assert public_error(MediaError("weights not found", path="/srv/faceanim/weights/x.safetensors"), job) == \
        "weights not found"
    assert public_error(NoFaceError(f"no face in {job}/source.jpg"), job) == "no face in source.jpg"


def test_driving_and_template_are_exclusive(client, face_jpg, portrait):
    smile = portrait("liveportrait_d9.jpg").read_bytes()
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)})
    assert r.status_code == 400
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("b.jpg", smile)},
                    data={"template": "blink"})
    assert r.status_code == 400


def test_unknown_and_path_like_job_ids(client):
    for job_id in ("0" * 32, "nope", "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "a" * 64):
        for method, suffix in (("GET", ""), ("GET", "/result"), ("DELETE", "")):
            r = client.request(method, f"/v1/jobs/{job_id}{suffix}")
            assert r.status_code in (404, 405, 422), (job_id, method, r.status_code)
            assert r.status_code != 200
    assert client.get("/v1/jobs/../../etc/passwd").status_code == 404


def test_path_like_file_names_never_reach_the_filesystem(client, face_jpg, tmp_path):
    jobs_root = client.app.state.resources.jobs.root
    evil = f"../../../../{tmp_path.name}/evil.jpg"
    r = client.post("/v1/jobs", files={"source": (evil, face_jpg)}, data={"template": "nod", "max_frames": "2"})
    assert r.status_code == 202, r.text
    job_dir = jobs_root / r.json()["id"]
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done"
    assert sorted(p.name for p in job_dir.iterdir()) == ["result.mp4", "source.jpg"]
    assert not (tmp_path / "evil.jpg").exists()
    assert not list(jobs_root.parent.glob("**/evil.jpg"))


def test_a_template_name_as_a_file_name_is_just_a_file(client, face_jpg, clip):
    # text named like a template or a motion file: sniffed as neither, refused (never routed to a template)
    for name in ("template:blink", "motion.npz", "template:../../etc/passwd"):
        r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": (name, b"not media at all")})
        assert r.status_code == 415, (name, r.status_code)
    # a zip (what a .npz is) is not a driver upload either: motion files are never loaded from clients
    zipped = io.BytesIO()
    np.savez(zipped, x=np.zeros(3))
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("motion.npz", zipped.getvalue())})
    assert r.status_code == 415
    # a real video named "template:blink" is animated as that video (4.9 s: 148 frames, not a 75-frame template)
    video = clip("liveportrait_d5.mp4").read_bytes()
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg), "driving": ("template:blink", video)},
                    data={"max_frames": "3"})
    assert r.status_code == 202
    status = wait_for(client, r.json()["id"])
    assert status["state"] == "done" and status["frames_done"] == 3
    # and the template field takes only bundled names
    for bad in ("../blink", "blink.npz", "template:blink", "/etc/passwd"):
        r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": bad})
        assert r.status_code == 422, bad


def test_bad_options_are_refused(client, face_jpg):
    for field, value in (("renderer", "../../x"), ("mode", "sideways"), ("expression_scale", "-1"),
                         ("eyes_open", "2"), ("face", "-1"), ("max_frames", "0")):
        r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "blink", field: value})
        assert r.status_code == 422, (field, value, r.status_code)


# ---------------------------------------------------------------------------------------------- lifecycle


def test_cancel_stops_the_job_and_removes_its_files(client, face_jpg):
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "demo"})
    assert r.status_code == 202
    job_id = r.json()["id"]
    job_dir = client.app.state.resources.jobs.root / job_id
    until(lambda: client.get(f"/v1/jobs/{job_id}").json()["state"] == "running", timeout=30)
    d = client.delete(f"/v1/jobs/{job_id}")
    assert d.status_code == 200 and d.json()["state"] == "cancelled"
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 404
    assert until(lambda: not job_dir.exists(), timeout=60)


def test_delete_finished_job(client, face_jpg):
    r = client.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "nod", "max_frames": "2"})
    status = wait_for(client, r.json()["id"])
    job_dir = client.app.state.resources.jobs.root / status["id"]
    assert job_dir.is_dir()
    assert client.delete(f"/v1/jobs/{status['id']}").json()["state"] == "done"
    assert not job_dir.exists() and client.get(f"/v1/jobs/{status['id']}").status_code == 404


def test_retention_deletes_finished_jobs(face_jpg):
    with make_client(retention_seconds=3.0) as c:  # long enough to see it done on a busy machine
        r = c.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "nod", "max_frames": "2"})
        status = wait_for(c, r.json()["id"])
        assert status["state"] == "done"
        job_dir = c.app.state.resources.jobs.root / status["id"]
        assert until(lambda: c.get(f"/v1/jobs/{status['id']}").status_code == 404, timeout=20)
        assert not job_dir.exists()
        root = c.app.state.resources.jobs.root
    assert not root.exists()  # shutdown removes every job directory


def test_busy_server_refuses_more_jobs(face_jpg):
    limits = Limits(upload_bytes=MB, active_jobs=1)
    with make_client(limits=limits) as c:
        first = c.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "demo"})
        assert first.status_code == 202
        second = c.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "demo"})
        assert second.status_code == 503
        c.delete(f"/v1/jobs/{first.json()['id']}")


# ---------------------------------------------------------------------------------------------- auth


def test_non_local_bind_needs_a_token():
    with pytest.raises(FaceAnimError, match="token"):
        ServerConfig(host="0.0.0.0")
    with pytest.raises(FaceAnimError, match="16 characters"):
        ServerConfig(host="0.0.0.0", token="short")
    assert ServerConfig(host="::1").token is None


def test_token_is_required_when_set(face_jpg):
    token = "s3cret-token-0123456789"
    with make_client(host="0.0.0.0", token=token) as c:
        assert c.get("/v1/health").status_code == 200
        assert c.get("/v1/templates").status_code == 401
        assert c.get("/v1/templates", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        ok = {"Authorization": f"Bearer {token}"}
        assert c.get("/v1/templates", headers=ok).status_code == 200
        r = c.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "blink"})
        assert r.status_code == 401
        r = c.post("/v1/jobs", files={"source": ("a.jpg", face_jpg)}, data={"template": "nod", "max_frames": "2"},
                   headers=ok)
        assert r.status_code == 202
        assert c.get(f"/v1/jobs/{r.json()['id']}").status_code == 401
        assert wait_for(c, r.json()["id"], headers=ok)["state"] == "done"
        assert json.loads(c.get("/openapi.json").text)["components"]["securitySchemes"]["HTTPBearer"]
