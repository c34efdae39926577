"""``faceanim bench``: wall-clock speed of the real file job, per-stage latency, peak memory, as ratios to a
trivial reference pass (decode + copy + encode) measured in the same run.

Two numbers per configuration, never mixed up:

- **end to end** — the wall-clock time of ``faceanim.pipeline.run.animate_file`` (decode to the encoded
  file, encoder flush and rename included, stages overlapping over the cores as users get them), frames ÷
  seconds. The source preparation (once per job) is included, and also reported on its own;
- **stage sum** — the sum of per-stage medians, each stage timed alone in a sequential loop on the same
  ``Session`` (what a frame costs when nothing overlaps).
"""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceanim.errors import FaceAnimError
from faceanim.face.masks import Segmenter
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image
from faceanim.media.video import VideoWriter, iter_video, probe_video
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.pipeline.run import JobOptions, animate_file
from faceanim.pipeline.session import Session, SessionFrame
from faceanim.render.registry import create_renderer


@dataclass(frozen=True)
class BenchSettings:
    frames: int | None = None  # frames per configuration; None = the whole clip
    warmup: int = 5  # first frames left out of the stage medians
    threads: int = 2


class StageTimer:
    """Collects per-frame durations of named stages."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds * 1000.0)

    def summary(self, skip: int) -> dict[str, dict[str, float]]:
        out = {}
        for k, v in self.samples.items():
            a = np.array(v[skip:] or v)
            out[k] = {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "n": len(a)}
        return out


class RssSampler:
    """Peak resident memory of this process while the block runs (sampled every 10 ms from /proc)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # the process's peak so far

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, self.current_mb())

    def __enter__(self) -> RssSampler:
        self.peak_mb = self.current_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.current_mb())


def _frame_count(clip: Path, settings: BenchSettings) -> int | None:
    n = probe_video(clip).frame_count
    return min(n, settings.frames) if (n and settings.frames) else (n or settings.frames)


def _stage_result(timer: StageTimer, settings: BenchSettings, exclude: Sequence[str] = ()) -> dict[str, Any]:
    stages = timer.summary(settings.warmup)
    total = sum(s["median_ms"] for k, s in stages.items() if k not in exclude)
    return {"stages": stages, "stage_sum_ms": total, "stage_sum_fps": 1000.0 / total if total else float("inf")}


def _wall(frames: int, seconds: float) -> dict[str, float]:
    return {"frames": frames, "seconds": seconds, "ms_per_frame": 1000.0 * seconds / frames if frames else float("nan"),
            "fps": frames / seconds if seconds else float("inf")}


def bench_reference(clip: Path, settings: BenchSettings) -> dict:
    """Decode + copy + encode: the floor any configuration is compared with (wall clock and stage sum)."""
    timer = StageTimer()
    n = 0
    with tempfile.TemporaryDirectory() as tmp, RssSampler() as rss:
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "ref.mp4", probe_video(clip).fps) as writer:
            it = iter_video(clip, max_frames=settings.frames)
            while True:
                t0 = time.perf_counter()
                vf = next(it, None)
                if vf is None:
                    break
                t1 = time.perf_counter()
                frame = vf.image.copy()
                t2 = time.perf_counter()
                writer.write(frame, time=vf.time)
                t3 = time.perf_counter()
                timer.add("decode", t1 - t0)
                timer.add("copy", t2 - t1)
                timer.add("encode", t3 - t2)
                n += 1
        wall = time.perf_counter() - start  # the encoder flush and rename are inside
    return {"end_to_end": _wall(n, wall), **_stage_result(timer, settings), "peak_rss_mb": rss.peak_mb}


def bench_tracking(clip: Path, settings: BenchSettings) -> dict:
    """Landmark tracking as file jobs run it, and the foreground mask, per frame (the analysis hot path)."""
    timer = StageTimer()
    with FaceTracker(TrackerConfig(describe=False)) as tracker, Segmenter() as seg, RssSampler() as rss:
        for vf in iter_video(clip, max_frames=settings.frames):
            t0 = time.perf_counter()
            tracker.update(vf.image, vf.index, vf.time)
            t1 = time.perf_counter()
            seg.foreground(vf.image)
            t2 = time.perf_counter()
            timer.add("landmarks", t1 - t0)
            timer.add("masks", t2 - t1)
    return {**_stage_result(timer, settings), "peak_rss_mb": rss.peak_mb}


def bench_end_to_end(source: Path, clip: Path, renderer: str, settings: BenchSettings) -> dict:
    """Wall-clock time of the real file job (``animate_file``: decode → encoded file, encoder flush included)."""
    options = JobOptions(animator=AnimatorConfig(renderer=renderer), max_frames=settings.frames, progress=False)
    with tempfile.TemporaryDirectory() as tmp, RssSampler() as rss:
        out = Path(tmp) / "out.mp4"
        start = time.perf_counter()
        report = animate_file(str(source), str(clip), str(out), options)
        wall = time.perf_counter() - start
        size = out.stat().st_size
    return {**_wall(report.frames, wall), "missing_frames": report.missing_frames, "bytes": size,
            "peak_rss_mb": rss.peak_mb}


class _TimedRenderer:
    """A renderer that times its ``render`` calls (everything else is the wrapped renderer's)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0

    def render(self, state: Any, target: Any) -> Any:
        t0 = time.perf_counter()
        out = self._inner.render(state, target)
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def bench_stages(source: Path, clip: Path, renderer: str, settings: BenchSettings) -> dict:
    """The same job's stages one at a time on a ``Session``: decode, landmarks (+ the session's smoothing and
    reference bookkeeping), motion transfer, render, paste-back, encode; then the hot path replayed alone."""
    t0 = time.perf_counter()
    animator = Animator.prepare(read_image(source), AnimatorConfig(renderer=renderer), path=str(source))
    prepare_ms = 1000.0 * (time.perf_counter() - t0)
    timer = StageTimer()
    timed = _TimedRenderer(animator.renderer)
    animator.renderer = timed  # type: ignore[assignment]
    animate, targets = animator.animate, animator.targets
    calls: list[tuple[Any, Any, Any]] = []
    spent = {"animate": 0.0, "targets": 0.0}

    def timed_targets(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = targets(*args, **kwargs)
        spent["targets"] += time.perf_counter() - t
        return out

    def timed_animate(motion: Any, reference: Any, driver: Any = None) -> Any:
        spent["targets"], timed.seconds = 0.0, 0.0
        t = time.perf_counter()
        out = animate(motion, reference, driver=driver)
        total = time.perf_counter() - t
        spent["animate"] += total
        timer.add("motion", spent["targets"])
        timer.add("render", timed.seconds)
        timer.add("paste_back", total - spent["targets"] - timed.seconds)
        calls.append((motion, reference, driver))
        return out

    animator.targets = timed_targets  # type: ignore[method-assign]
    animator.animate = timed_animate  # type: ignore[method-assign]

    def write(frames: list[SessionFrame]) -> None:
        for f in frames:
            t = time.perf_counter()
            writer.write(f.image, time=f.time)
            timer.add("encode", time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp, Session(animator) as session, \
            VideoWriter(Path(tmp) / "out.mp4", probe_video(clip).fps) as writer:
        it = iter_video(clip, max_frames=settings.frames)
        while True:
            t = time.perf_counter()
            vf = next(it, None)
            if vf is None:
                break
            timer.add("decode", time.perf_counter() - t)
            spent["animate"] = 0.0
            t = time.perf_counter()
            ready = session.push_image(vf.image, vf.time)
            timer.add("landmarks+session", time.perf_counter() - t - spent["animate"])
            write(ready)
        write(session.flush())
    animator.animate, animator.targets, animator.renderer = animate, targets, timed._inner  # type: ignore
    res = _stage_result(timer, settings)
    res["prepare_ms"] = prepare_ms
    # the same motions again with nothing else running (no decoder, tracker or encoder competing for the cores)
    isolated = StageTimer()
    for motion, reference, driver in calls:
        t = time.perf_counter()
        animate(motion, reference, driver=driver)
        isolated.add("motion+render+paste", time.perf_counter() - t)
    res["isolated"] = isolated.summary(settings.warmup).get("motion+render+paste")
    return res


def run_bench(source: Path, clip: Path, renderers: Sequence[str], settings: BenchSettings = BenchSettings()) -> dict:
    """All configurations in one run, each with its ratios to the reference pass."""
    cv2.setNumThreads(settings.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    ref = bench_reference(clip, settings)
    out: dict[str, Any] = {
        "clip": clip.name,
        "source": source.name,
        "threads": settings.threads,
        "cv2_threads": cv2.getNumThreads(),
        "cpu_count": os.cpu_count(),
        "frames": _frame_count(clip, settings),
        "reference": ref,
        "tracking": bench_tracking(clip, settings),
        "renderers": {},
        "definitions": {
            "end_to_end": "wall clock of faceanim.pipeline.run.animate_file (decode to encoded file, encoder flush "
                          "included, source preparation included), frames / seconds",
            "stage_sum": "sum of per-stage medians, each stage timed alone in a sequential loop",
            "warm_process": "every renderer was built once before timing (imports excluded, weights loading "
                            "included)",
        },
    }
    out["tracking"]["ratio_to_reference"] = out["tracking"]["stage_sum_ms"] / ref["stage_sum_ms"]
    # Each renderer is built once before anything is timed, so one-time costs of the process (importing torch:
    # 0.7 s here, about 5 ms/frame over 150 frames) are not charged to whichever renderer happens to run first.
    # Loading weights and preparing the source stay inside every timed job.
    for name in renderers:
        with contextlib.suppress(FaceAnimError):
            create_renderer(name)
    for name in renderers:
        try:
            r = {"end_to_end": bench_end_to_end(source, clip, name, settings),
                 **bench_stages(source, clip, name, settings)}
        except FaceAnimError as exc:  # e.g. a neural renderer without its weights: say so, measure the rest
            out["renderers"][name] = {"error": str(exc)}
            continue
        r["ratio_to_reference"] = {
            "end_to_end": r["end_to_end"]["ms_per_frame"] / ref["end_to_end"]["ms_per_frame"],
            "stage_sum": r["stage_sum_ms"] / ref["stage_sum_ms"],
        }
        out["renderers"][name] = r
    if renderers and all("error" in r for r in out["renderers"].values()):
        raise FaceAnimError("no renderer could be benchmarked: " + "; ".join(
            r["error"] for r in out["renderers"].values()))
    return out


def format_bench(result: dict) -> str:
    """A readable report of :func:`run_bench`'s result; every line says whether it is wall clock or stage sum."""
    ref = result["reference"]
    lines = [f"clip {result['clip']} ({result['frames']} frames), source {result['source']}, "
             f"{result['threads']} threads",
             "end to end = wall clock of the real file job (decode to encoded file, encoder flush included), "
             "frames / seconds; stage sum = per-stage medians added up (stages timed one at a time)",
             f"reference (decode+copy+encode): end to end {ref['end_to_end']['ms_per_frame']:.2f} ms/frame "
             f"({ref['end_to_end']['fps']:.1f} FPS); stage sum {ref['stage_sum_ms']:.2f} ms"]
    tr = result["tracking"]
    lines.append(f"tracking: stage sum {tr['stage_sum_ms']:.2f} ms/frame = {tr['ratio_to_reference']:.2f}x the "
                 "reference's; " + ", ".join(f"{k} {v['median_ms']:.2f}/{v['p95_ms']:.2f}"
                                              for k, v in tr["stages"].items()))
    for name, r in result["renderers"].items():
        if "error" in r:
            lines.append(f"{name}: not measured: {r['error']}")
            continue
        e2e, ratio = r["end_to_end"], r["ratio_to_reference"]
        lines.append(f"{name}: end to end {e2e['ms_per_frame']:.2f} ms/frame = {e2e['fps']:.1f} FPS "
                     f"(wall clock, {e2e['frames']} frames in {e2e['seconds']:.2f} s, incl. source preparation "
                     f"{r['prepare_ms']:.0f} ms) = {ratio['end_to_end']:.2f}x reference; "
                     f"peak RSS {e2e['peak_rss_mb']:.0f} MB")
        lines.append(f"  stage sum {r['stage_sum_ms']:.2f} ms/frame ({r['stage_sum_fps']:.1f} FPS if nothing "
                     f"overlapped) = {ratio['stage_sum']:.2f}x reference; median/p95 ms: " + ", ".join(
                         f"{k} {v['median_ms']:.2f}/{v['p95_ms']:.2f}" for k, v in r["stages"].items()))
        iso = r.get("isolated")
        if iso:
            lines.append(f"  motion+render+paste alone (nothing else running): "
                         f"{iso['median_ms']:.2f}/{iso['p95_ms']:.2f} ms")
    return "\n".join(lines)
