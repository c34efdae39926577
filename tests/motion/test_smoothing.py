"""Streaming landmark smoothers: zero-phase has no lag and keeps peaks; gaps split segments; memory is bounded."""

import numpy as np

from faceanim.motion.smoothing import CausalSmoother, SmoothingConfig, ZeroPhaseSmoother


def _run(smoother, times, values):
    out = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        out += smoother.push(i, t, v)
    out += smoother.flush()
    return out


def test_zero_phase_reproduces_quadratic_motion_exactly_even_at_the_ends():
    t = np.arange(40) / 25.0
    x = (0.3 + 2.0 * t - 1.5 * t**2)[:, None]
    out = _run(ZeroPhaseSmoother(SmoothingConfig(strength=2.0)), t, x)
    assert [k for k, _ in out] == list(range(40))
    assert np.allclose(np.stack([v for _, v in out]), x, atol=1e-9)


def test_zero_phase_keeps_a_mouth_peak_in_place_and_removes_noise():
    rng = np.random.default_rng(0)
    t = np.arange(100) / 25.0
    bump = np.exp(-0.5 * ((t - 2.0) / 0.12) ** 2)  # a ~0.3 s mouth opening
    noisy = bump + 0.05 * rng.standard_normal(100)
    zp = np.array([v[0] for _, v in _run(ZeroPhaseSmoother(SmoothingConfig(strength=1.5)), t, noisy[:, None])])
    causal = np.array([v[0] for _, v in _run(CausalSmoother(SmoothingConfig(strength=1.0)), t, noisy[:, None])])
    assert abs(int(np.argmax(zp)) - 50) <= 1  # no lag
    assert zp.max() > 0.9  # the peak is kept
    assert np.std(zp - bump) < 0.8 * np.std(noisy - bump)  # and noise goes down
    # the causal filter, for comparison, peaks late: the reason file jobs do not use it
    assert int(np.argmax(causal)) >= int(np.argmax(zp))


def test_gaps_split_segments_and_order_is_kept():
    t = np.arange(20) / 30.0
    values = [np.array([0.0])] * 10 + [None] + [np.array([10.0])] * 9
    out = _run(ZeroPhaseSmoother(SmoothingConfig(strength=3.0)), t, values)
    assert [k for k, _ in out] == list(range(20))
    assert out[10][1] is None
    assert all(float(v[0]) == 0.0 for _, v in out[:10])  # nothing leaks across the gap
    assert all(abs(float(v[0]) - 10.0) < 1e-9 for _, v in out[11:])


def test_look_ahead_is_bounded_and_variable_frame_rate_is_fine():
    smoother = ZeroPhaseSmoother(SmoothingConfig(strength=1.0))
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.02, 0.05, 500))  # irregular timestamps (VFR)
    held = 0
    emitted = 0
    for i, ti in enumerate(t):
        emitted += len(smoother.push(i, float(ti), np.array([float(ti)])))
        held = max(held, i + 1 - emitted)
    assert held <= int(np.ceil(smoother.radius / 0.02)) + 1
    # a linear signal (x = t) stays exact on irregular times
    out = _run(ZeroPhaseSmoother(SmoothingConfig(strength=1.0)), t, t[:, None])
    assert np.allclose([v[0] for _, v in out], t, atol=1e-9)


def test_strength_zero_passes_samples_through():
    out = _run(ZeroPhaseSmoother(SmoothingConfig(strength=0.0)), [0.0, 0.1], [np.array([1.0]), np.array([2.0])])
    assert [float(v[0]) for _, v in out] == [1.0, 2.0]
