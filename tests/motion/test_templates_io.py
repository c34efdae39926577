"""Motion template files: round trips, old files, linear-time loading and bounded-memory streaming."""

from __future__ import annotations

import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from faceanim.errors import MediaError
from faceanim.motion.templates import (
    MotionTemplate,
    TemplateReader,
    TemplateWriter,
    load_template,
    procedural_template,
    save_template,
)
from faceanim.motion.types import Motion


def _motions(n: int, seed: int = 0) -> list[Motion]:
    rng = np.random.default_rng(seed)
    return [
        Motion(
            rotation=rng.normal(size=(3, 3)),
            translation=rng.normal(size=3) * 100,
            scale=float(rng.uniform(0.5, 2)),
            expression=rng.normal(size=(478, 3)),
            eye_open=rng.uniform(size=2),
            lip_open=float(rng.uniform()),
            gaze=rng.normal(size=4),
            valid=bool(i % 7),
        )
        for i in range(n)
    ]


def _same(a: Motion, b: Motion) -> bool:
    """Equal at float32 precision (the file's)."""
    f = np.float32
    return (
        all(
            np.array_equal(np.asarray(x, f), np.asarray(y, f))
            for x, y in [
                (a.rotation, b.rotation), (a.translation, b.translation), (a.expression, b.expression),
                (a.eye_open, b.eye_open), (a.gaze, b.gaze), (a.scale, b.scale), (a.lip_open, b.lip_open),
            ]
        )
        and a.valid == b.valid
    )


def _old_style_file(
    path: Path, motions: list[Motion], fps: Fraction, compressed: bool = True, fortran: bool = False
) -> Path:
    """A template exactly as the first save_template wrote it (np.savez_compressed of stacked arrays)."""
    arrays = {
        "format": np.array("faceanim-motion"),
        "version": np.array(1),
        "rotation": np.stack([m.rotation for m in motions]).astype(np.float32),
        "translation": np.stack([m.translation for m in motions]).astype(np.float32),
        "scale": np.array([m.scale for m in motions], np.float32),
        "expression": np.stack([m.expression for m in motions]).astype(np.float32),
        "eye_open": np.stack([m.eye_open for m in motions]).astype(np.float32),
        "lip_open": np.array([m.lip_open for m in motions], np.float32),
        "gaze": np.stack([m.gaze for m in motions]).astype(np.float32),
        "valid": np.array([m.valid for m in motions], bool),
        "fps": np.array([fps.numerator, fps.denominator], np.int64),
        "meta": np.array('{"source": "old.mp4", "missing": 2}'),
    }
    if fortran:  # another writer's memory layout
        arrays = {k: np.asfortranarray(v) if v.ndim > 1 else v for k, v in arrays.items()}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_round_trip_keeps_every_frame_fps_meta_and_times(tmp_path: Path) -> None:
    motions = _motions(50)
    times = tuple(float(t) for t in np.cumsum(np.full(50, 1001 / 30000)) + [0.013 * (i % 3) for i in range(50)])
    tpl = MotionTemplate(motions, Fraction(30000, 1001), {"source": "clip.mp4", "missing": 3}, times)
    path = save_template(tmp_path / "m.npz", tpl)
    back = load_template(path)
    assert len(back) == 50 and back.fps == Fraction(30000, 1001)
    assert back.meta == {"source": "clip.mp4", "missing": 3}
    assert back.times == times
    assert all(_same(a, b) for a, b in zip(motions, back.motions, strict=True))
    assert back.motions[0].expression.dtype == np.float64
    # saving what was loaded gives the same arrays again; no temp files are left beside it
    save_template(tmp_path / "again.npz", back)
    with np.load(path, allow_pickle=False) as a, np.load(tmp_path / "again.npz", allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "m.npz"]


def test_templates_without_times_are_at_i_over_fps(tmp_path: Path) -> None:
    path = save_template(tmp_path / "t.npz", procedural_template("blink", seconds=1.0, fps=25))
    with TemplateReader(path) as r:
        assert r.times is None
        assert [t for t, _ in r.timed()] == pytest.approx([i / 25 for i in range(25)])


@pytest.mark.parametrize(("compressed", "fortran"), [(True, False), (False, False), (True, True)])
def test_files_written_by_the_old_writer_still_load(tmp_path: Path, compressed: bool, fortran: bool) -> None:
    motions = _motions(12, seed=3)
    path = _old_style_file(tmp_path / "old.npz", motions, Fraction(25), compressed, fortran)
    tpl = load_template(path)
    assert tpl.fps == 25 and tpl.meta == {"source": "old.mp4", "missing": 2} and tpl.times is None
    assert all(_same(a, b) for a, b in zip(motions, tpl.motions, strict=True))


def _load_seconds(path: Path) -> float:
    """CPU seconds to load (process time: other jobs on a busy machine do not count)."""
    t0 = time.process_time()
    load_template(path)
    return time.process_time() - t0


def test_loading_is_linear_in_frames(tmp_path: Path) -> None:
    m = _motions(600)
    short = save_template(tmp_path / "200.npz", MotionTemplate(m[:200], Fraction(30)))
    long = save_template(tmp_path / "600.npz", MotionTemplate(m, Fraction(30)))
    runs = [(_load_seconds(short), _load_seconds(long)) for _ in range(7)]  # interleaved: the same load
    t200, t600 = min(r[0] for r in runs), min(r[1] for r in runs)
    assert t600 < 0.5  # it took 0.8 s when every frame decompressed whole arrays
    assert t600 < 3 * t200 + 0.02, (t200, t600)  # quadratic loading would be about 9x


def test_reader_streams_with_bounded_memory_and_can_iterate_twice(tmp_path: Path) -> None:
    n = 2000  # the expression array alone is 11.5 MB as float32 and 23 MB as float64
    with TemplateWriter(tmp_path / "long.npz", Fraction(30), chunk=128) as w:
        base = _motions(4)
        tracemalloc.start()
        for i in range(n):
            w.append(base[i % 4], time=i / 30 + (0.01 if i % 5 == 0 else 0.0))
        _, append_peak = tracemalloc.get_traced_memory()
    _, close_peak = tracemalloc.get_traced_memory()  # writing the .npz at close included
    tracemalloc.stop()
    assert append_peak < 4 * 2**20 and close_peak < 8 * 2**20
    with TemplateReader(tmp_path / "long.npz", chunk=128) as r:
        assert len(r) == n and r.fps == 30
        assert r.frame_times()[5] == pytest.approx(5 / 30 + 0.01)
        tracemalloc.start()
        count = sum(1 for _ in r)
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n and read_peak < 4 * 2**20
        again = [m for _, m in zip(range(6), r, strict=False)]
        assert all(_same(a, base[i % 4]) for i, a in enumerate(again))


def test_writer_checks_times_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    m = _motions(3)
    with pytest.raises(ValueError, match="increasing"), TemplateWriter(tmp_path / "a.npz", 25) as w:
        w.append(m[0], 0.0)
        w.append(m[1], 0.0)
    with pytest.raises(ValueError, match="every frame or for none"), TemplateWriter(tmp_path / "b.npz", 25) as w:
        w.append(m[0], 0.0)
        w.append(m[1])
    with pytest.raises(RuntimeError, match="tracker died"), TemplateWriter(tmp_path / "c.npz", 25) as w:
        w.append(m[0])
        raise RuntimeError("tracker died")
    with pytest.raises(MediaError, match="no frames") as err, TemplateWriter(tmp_path / "d.npz", 25):
        pass
    assert "d.npz" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    with TemplateWriter(tmp_path / "e.npz", 25, meta={"source": "x.mp4"}) as w:
        w.append(m[0])
        w.meta["missing"] = 1  # known only at the end
    assert load_template(tmp_path / "e.npz").meta == {"source": "x.mp4", "missing": 1}


def test_bad_files_are_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    good = save_template(tmp_path / "good.npz", MotionTemplate(_motions(40), Fraction(25)))
    data = good.read_bytes()
    cases = {
        "missing.npz": None,
        "text.npz": b"not a zip file\n" * 10,
        "cut.npz": data[: len(data) // 2],
        "flipped.npz": data[:3000] + bytes(b ^ 0xFF for b in data[3000:3400]) + data[3400:],
    }
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array([{"a": 1}], dtype=object))
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    for path in [tmp_path / n for n in cases] + [pickled]:
        with pytest.raises(MediaError) as err, TemplateReader(path) as r:
            for _ in r:
                pass
        assert str(path) in str(err.value)
        with pytest.raises(MediaError):
            load_template(path)
    bad_times = tmp_path / "times.npz"
    with np.load(good, allow_pickle=False) as z:
        arrays = dict(z)
    np.savez(bad_times, **arrays, time=np.array([0.0, 0.1] * 20))
    with pytest.raises(MediaError, match="times"):
        load_template(bad_times)
