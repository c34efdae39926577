"""Sliding-window generation: length, chunk independence, continuity across windows, silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceanim.audio.generate import generate, speech_input
from faceanim.audio.targets import landmark_groups
from faceanim.audio.weights import load_audio2motion
from faceanim.face.model import load_face_model
from faceanim.face.ratios import lip_open_ratio


def _speech(seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * rng.standard_normal(t.size) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _run(model, x: np.ndarray, chunk: int, window: int = 60, stride: int = 30, seed: int = 0):
    style = load_face_model().canonical[landmark_groups().style].reshape(-1).astype(np.float32)
    return list(generate(model, speech_input([x[i : i + chunk] for i in range(0, x.size, chunk)]), style,
                         seed=seed, window=window, stride=stride))


@pytest.fixture(scope="module")
def model(tiny_weights: Path):
    return load_audio2motion(tiny_weights)


def test_one_frame_per_40ms_whatever_the_chunks(model) -> None:
    x = _speech(5.3)
    a = _run(model, x, 16000)
    b = _run(model, x, 777)
    assert [f.index for f in a] == list(range(133)) == [f.index for f in b]
    for fa, fb in zip(a, b, strict=True):
        assert np.allclose(fa.mouth, fb.mouth, atol=1e-5) and np.allclose(fa.pose, fb.pose, atol=1e-5)


def test_windows_are_stitched_without_jumps(model) -> None:
    frames = _run(model, _speech(8.0), 4000, window=60, stride=30)
    pose = np.stack([f.pose for f in frames])
    mouth = np.stack([f.mouth for f in frames]).reshape(len(frames), -1)
    # Without the cross-fade, window starts (every 30 frames) would jump; with it, no step at a boundary
    # stands out from the ordinary frame-to-frame change inside the windows.
    for series in (pose, mouth):
        step = np.linalg.norm(np.diff(series, axis=0), axis=1)
        boundary = step[29::30]
        assert boundary.max() <= 3.0 * np.median(step) + 1e-6


def test_no_crossfade_would_jump(model) -> None:
    """The check above can fail: raw windows with fresh noise each do jump at their boundaries."""
    a = _run(model, _speech(4.8), 4000, window=60, stride=60, seed=0)  # stride = window: no overlap to blend
    pose = np.stack([f.pose for f in a])
    step = np.linalg.norm(np.diff(pose, axis=0), axis=1)
    assert step[59] > 3.0 * np.median(step)


def test_seeds_differ(model) -> None:
    x = _speech(3.0)
    a = np.stack([f.pose for f in _run(model, x, 8000, seed=0)])
    b = np.stack([f.pose for f in _run(model, x, 8000, seed=1)])
    assert np.var(a - b) > 0


def test_silence_closes_the_mouth(model) -> None:
    from faceanim.pipeline.speak import speech_expression

    rest = load_face_model().canonical
    frames = _run(model, np.zeros(16000 * 3, np.float32), 8000)
    assert all(f.gate == 0.0 for f in frames)
    g = landmark_groups()
    for f in frames:
        e = speech_expression(rest, f)
        assert np.allclose(e[g.mouth], rest[g.mouth])
        assert lip_open_ratio(e) == pytest.approx(lip_open_ratio(rest), abs=1e-3)  # eyes may move


def test_silence_closes_an_open_mouthed_source(model) -> None:
    from faceanim.face.analyze import describe_face
    from faceanim.motion.retarget import set_lip_open
    from faceanim.pipeline.speak import SpeechStyle, _lower_face_weights, motion_from_speech

    open_face = set_lip_open(load_face_model().canonical, 0.4)
    src = describe_face(open_face * 80.0 + np.array([128.0, 128.0, 0.0]))
    assert src.lip_open > 0.3
    frame = _run(model, np.zeros(16000, np.float32), 8000)[10]
    m = motion_from_speech(src, frame, SpeechStyle(), 1.0, _lower_face_weights())
    assert m.lip_open < 0.05  # closed (CLOSED_LIP), from 0.4


def test_pose_gain_scales_head_motion_only(model) -> None:
    x = _speech(2.0)
    style = load_face_model().canonical[landmark_groups().style].reshape(-1).astype(np.float32)

    def run(gain):
        chunks = [x[i : i + 8000] for i in range(0, x.size, 8000)]
        return list(generate(model, speech_input(chunks), style, window=60, stride=30, pose_gain=gain))

    a, b = run(None), run(np.full(6, 2.0, np.float32))
    assert np.allclose(np.stack([f.pose for f in b]), 2.0 * np.stack([f.pose for f in a]), atol=1e-5)
    assert np.allclose(np.stack([f.mouth for f in b]), np.stack([f.mouth for f in a]))
    assert model.pose_gain is not None and model.pose_gain.shape == (6,)  # stored with the weights
