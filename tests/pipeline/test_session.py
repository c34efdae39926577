"""The session: driver time kept, no smoothing lag, gaps held and reported, reference from the first face."""

import numpy as np
import pytest

from faceanim.face.analyze import describe_face
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image
from faceanim.media.video import iter_video
from faceanim.pipeline.animator import Animator
from faceanim.pipeline.session import DriverSample, Session, SessionConfig


@pytest.fixture(scope="module")
def talking(clip):
    """(times, raw landmarks) of 75 frames of a real talking clip."""
    frames = list(iter_video(clip("deepavsr_lrs2_00001.mp4"), max_frames=75))
    with FaceTracker(TrackerConfig(describe=False)) as tracker:
        lms = [tracker.update(f.image, f.index, f.time).landmarks for f in frames]
    return [f.time for f in frames], lms, frames[0].image


def _samples(times, lms, start=0, offset=0.0):
    return [DriverSample(start + i, offset + t, lm) for i, (t, lm) in enumerate(zip(times, lms, strict=True))]


def _run(session, samples):
    out = []
    for s in samples:
        out += session.push(s)
    return out + session.flush()


def test_every_frame_comes_out_in_order_at_its_driver_time(talking):
    times, lms, _ = talking
    out = _run(Session(None), _samples(times, lms))
    assert [f.index for f in out] == list(range(len(times)))
    assert [f.time for f in out] == times


def test_smoothing_adds_no_lag_to_the_mouth(talking):
    times, lms, _ = talking
    raw = np.array([describe_face(lm).lip_open for lm in lms])
    out = _run(Session(None, SessionConfig(smoothing=1.5)),
               _samples(times, lms))
    smooth = np.array([f.motion.lip_open for f in out])
    a, b = raw - raw.mean(), smooth - smooth.mean()
    n = len(a)
    lags = {k: float(np.dot(a[max(0, -k): n - max(0, k)], b[max(0, k): n - max(0, -k)])) for k in (-2, -1, 0, 1, 2)}
    assert max(lags, key=lags.get) == 0
    assert np.corrcoef(raw, smooth)[0, 1] > 0.95


def test_frames_without_a_face_hold_the_motion_and_are_reported(talking):
    times, lms, _ = talking
    samples = _samples(times, [None if 20 <= i < 25 else lm for i, lm in enumerate(lms)])
    session = Session(None)
    out = _run(session, samples)
    assert [f.status for f in out[20:25]] == ["missing"] * 5
    assert all(not f.motion.valid for f in out[20:25])
    assert np.allclose(out[22].motion.expression, out[19].motion.expression)
    assert session.missing == 5 and session.frames == len(times)


def test_self_reenactment_starts_at_the_source_and_live_mode_has_no_delay(talking, portrait):
    times, lms, first = talking
    animator = Animator.prepare(first)
    live = Session(animator, SessionConfig(live=True))
    got = [len(live.push(DriverSample(i, t, lm))) for i, (t, lm) in enumerate(zip(times[:10], lms[:10], strict=True))]
    assert got == [1] * 10  # live: every frame out at once
    file_job = Session(Animator.prepare(first))
    out = _run(file_job, _samples(times, lms))
    diff = np.abs(out[0].image.astype(float) - first.astype(float)).mean()
    assert diff < 2.0  # frame 0 drives the source with its own (neutral) motion
    # a portrait that is not the driver still animates with the same samples
    other = Session(Animator.prepare(read_image(portrait("liveportrait_s42.jpg"))))
    assert len(_run(other, _samples(times[:20], lms[:20]))) == 20


def test_time_cursor_pairs_streams_by_time_not_index():
    from types import SimpleNamespace

    from faceanim.pipeline.session import TimeCursor

    driver = (SimpleNamespace(index=i, time=i / 25) for i in range(100))  # 25 fps
    cursor = TimeCursor(driver)
    picked = [cursor.at(j / 30).index for j in range(90)]  # a 30 fps source over 3 s
    assert picked == [int(np.floor(j / 30 * 25 + 1e-6)) for j in range(90)]
    assert picked[-1] == 74  # 3 s of driver, not 90 frames of it


def test_a_long_faceless_opening_is_not_held_in_memory(talking):
    times, lms, _ = talking
    session = Session(None)
    ready = [len(session.push(DriverSample(i, i / 25.0))) for i in range(500)]  # 20 s without a face
    assert ready == [1] * 500
    # then the face appears: output waits for the 2 s reference window (75 frames at 25 fps = 3 s), then flows
    out = [len(session.push(sample)) for sample in _samples(times, lms, start=500, offset=20.0)]
    waited = next(j for j, n in enumerate(out) if n)
    assert 45 <= waited <= 55  # ~2 s at 25 fps
    session.flush()
    assert session.frames == 500 + len(times)
