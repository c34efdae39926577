"""Live mode: capture paced like a camera, drops instead of queues, latency carried to the output, the command."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from faceanim.cli import main
from faceanim.errors import MediaError
from faceanim.live.capture import Capture, CaptureSpec
from faceanim.live.runner import LiveSettings, run_live
from faceanim.live.sinks import FileSink
from faceanim.live.stream import open_session
from faceanim.media.image import read_image
from faceanim.media.provenance import read_provenance
from faceanim.media.video import probe_video
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.pipeline.session import SessionFrame

PORTRAIT = "sadtalker_happy.png"  # 256x256
CLIP = "liveportrait_d0.mp4"  # 512x512, 25 fps: the acceptance clip


def test_capture_spec(tmp_path, clip) -> None:
    assert CaptureSpec.parse("0") == CaptureSpec("camera", "0")
    assert CaptureSpec.parse("rtsp://cam.local/stream").kind == "url"
    assert CaptureSpec.parse(str(clip(CLIP))).kind == "file"
    with pytest.raises(MediaError, match="no such camera or video file"):
        CaptureSpec.parse(str(tmp_path / "missing.mp4"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(MediaError, match="not a video file"):
        CaptureSpec.parse(str(tmp_path / "a.txt"))


def test_file_capture_is_paced_at_its_frame_rate(clip) -> None:
    with Capture(CaptureSpec.parse(str(clip(CLIP)))) as cap:
        assert cap.fps == 25
        stamps = []
        for f in cap:
            stamps.append(f.capture_time)
            if len(stamps) == 11:
                break
    span = stamps[-1] - stamps[0]
    assert span >= 0.9 * 10 / 25  # real time, not as fast as it decodes
    assert span < 10 / 25 + 0.5


class _SlowSession:
    """A session whose renders take 100 ms: a renderer that cannot keep up with a 25 fps camera."""

    def __init__(self) -> None:
        self.calls = 0

    def push_image(self, image: np.ndarray, time_: float, payload: float) -> list[SessionFrame]:
        self.calls += 1
        time.sleep(0.1)
        return [SessionFrame(self.calls, time_, image, None, "tracked", payload)]

    def close(self) -> None:
        pass


def test_a_slow_renderer_drops_frames_and_latency_stays_flat(clip) -> None:
    session = _SlowSession()
    report = run_live(session, Capture(CaptureSpec.parse(str(clip(CLIP)))), [],  # type: ignore[arg-type]
                      LiveSettings(max_frames=50, warmup_seconds=0.2))
    assert report.captured == 50
    assert report.dropped > 15 and report.rendered + report.dropped == 50
    assert 0.3 < report.drop_share < 0.9
    assert report.fps < 12  # bounded by the 100 ms render
    # Frames are dropped, not queued: latency is a few renders at most, not growing with the run.
    assert report.latency_p95_ms is not None and report.latency_p95_ms < 450


def test_live_run_records_timed_marked_file(portrait, clip, tmp_path) -> None:
    config = AnimatorConfig()
    prepared = Animator.prepare(read_image(portrait(PORTRAIT)), config)
    session = open_session(prepared, config)
    capture = Capture(CaptureSpec.parse(str(clip(CLIP))))
    out = tmp_path / "live.mp4"
    sink = FileSink(out, capture.fps, {"faceanim_synthetic": "true", "faceanim_tool": "faceanim"})
    report = run_live(session, capture, [sink], LiveSettings(max_frames=40, overlay=True, warmup_seconds=0.3))
    session.close()
    assert report.captured == 40 and report.rendered >= 10
    assert report.latency_median_ms is not None and 0 < report.latency_median_ms < 2000
    info = probe_video(out)
    assert (info.width, info.height) == (256, 256)
    # Frames sit at their capture times: the file lasts as long as the capture, whatever was dropped.
    assert info.duration is not None and info.duration == pytest.approx(39 / 25, abs=0.25)
    assert read_provenance(out)["faceanim_synthetic"] == "true"


def test_live_command_bench_json(portrait, clip, tmp_path, capsys) -> None:
    out, js = tmp_path / "out.mp4", tmp_path / "live.json"
    code = main(["live", "--source", str(portrait(PORTRAIT)), "--camera", str(clip(CLIP)), "--max-frames", "30",
                 "-o", str(out), "--bench", "--json", str(js)])
    assert code == 0
    text = capsys.readouterr().out
    assert "sustained" in text and "latency median" in text
    result = json.loads(js.read_text())
    assert result["captured"] == 30 and set(result["latency_ms"]) == {"median", "p95"}
    assert 0.0 <= result["drop_share"] < 1.0
    assert out.is_file()


def test_live_command_errors_are_one_line(portrait, tmp_path, capsys) -> None:
    assert main(["live", "--source", str(tmp_path / "nope.jpg"), "--camera", "0"]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err
    assert main(["live", "--source", str(portrait(PORTRAIT)), "--camera", "7"]) == 2
    err = capsys.readouterr().err
    assert "camera 7: cannot open" in err and "Traceback" not in err
