"""The streaming engine: order, errors and cancellation across threads; live input drops instead of queueing."""

import threading
import time

import pytest

from faceanim.errors import Cancelled
from faceanim.pipeline.engine import LiveStream, run_stages


def test_stages_run_in_order_and_give_the_sequential_result():
    def double(items):
        for x in items:
            yield 2 * x

    def pairs(items):
        for x in items:
            yield x
            yield -x

    expected = [v for x in range(200) for v in (2 * x, -2 * x)]
    assert list(run_stages(range(200), [double, pairs], queue_size=2)) == expected


def test_an_error_in_a_stage_reaches_the_caller():
    def broken(items):
        for x in items:
            if x == 5:
                raise ValueError("frame 5 is corrupt")
            yield x

    with pytest.raises(ValueError, match="frame 5"):
        list(run_stages(range(10), [broken, lambda it: it]))


def test_cancel_stops_the_job_and_every_thread():
    cancel = threading.Event()
    before = threading.active_count()

    def slow(items):
        for x in items:
            time.sleep(0.01)
            yield x

    got = []
    with pytest.raises(Cancelled):
        for x in run_stages(iter(range(10_000)), [slow, lambda it: it], cancel=cancel):
            got.append(x)
            if x == 3:
                cancel.set()
    assert len(got) == 4
    time.sleep(0.2)
    assert threading.active_count() <= before


def test_stages_overlap_in_time():
    def sleepy(items):
        for x in items:
            time.sleep(0.02)  # stands for GIL-releasing work (decode, mediapipe, OpenCV)
            yield x

    t0 = time.perf_counter()
    assert len(list(run_stages(range(20), [sleepy, sleepy, sleepy]))) == 20
    assert time.perf_counter() - t0 < 0.8 * (3 * 20 * 0.02)  # a serial loop would take 1.2 s


def test_live_stream_drops_frames_when_the_renderer_is_behind_and_stays_bounded():
    def render(image, t):
        time.sleep(0.02)
        return [(image, t)]

    with LiveStream(render, queue_size=2) as live:
        for i in range(100):
            live.submit(i, float(i))  # 100 frames at once: far faster than 50 FPS
        outputs = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and (out := live.get(timeout=0.2)) is not None:
            outputs.append(out)
    stats = live.stats
    assert stats["submitted"] == 100
    assert stats["dropped"] >= 90  # the backlog was dropped, not queued
    assert outputs[-1][0] == 99  # the newest frame is always rendered
    assert [o[0] for o in outputs] == sorted(o[0] for o in outputs)


def test_live_stream_reports_a_renderer_error():
    def render(image, t):
        raise RuntimeError("boom")

    live = LiveStream(render)
    live.submit(1, 0.0)
    time.sleep(0.2)
    with pytest.raises(RuntimeError, match="boom"):
        live.get(timeout=0.1)
    live.close()
