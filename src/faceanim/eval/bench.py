"""``faceanim bench``: per-stage latency, FPS and peak memory, as ratios to a trivial reference pass.

Absolute times drift on shared machines, so every configuration is also reported as a ratio to a
reference pass (decode + copy + encode) measured in the same run.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceanim.face.masks import Segmenter
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.media.image import read_image
from faceanim.media.video import VideoWriter, iter_video
from faceanim.motion.transfer import transfer_motion
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.render.paste import paste_back


@dataclass(frozen=True)
class BenchSettings:
    frames: int = 100
    warmup: int = 5
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _finish(timer: StageTimer, settings: BenchSettings, wall: float, n: int) -> dict:
    stages = timer.summary(settings.warmup)
    total = sum(s["median_ms"] for s in stages.values())
    return {"stages": stages, "total_median_ms": total, "fps": 1000.0 / total if total else float("inf"),
            "wall_fps": n / wall if wall else float("inf"), "peak_rss_mb": _peak_rss_mb(), "gflops_per_frame": None}


def bench_reference(clip: Path, settings: BenchSettings) -> dict:
    """Decode + copy + encode: the floor any configuration is compared with."""
    timer = StageTimer()
    with tempfile.TemporaryDirectory() as tmp, VideoWriter(Path(tmp) / "ref.mp4", 25) as writer:
        start = time.perf_counter()
        n = 0
        it = iter_video(clip, max_frames=settings.frames)
        while True:
            t0 = time.perf_counter()
            vf = next(it, None)
            if vf is None:
                break
            t1 = time.perf_counter()
            frame = vf.image.copy()
            t2 = time.perf_counter()
            writer.write(frame)
            t3 = time.perf_counter()
            timer.add("decode", t1 - t0)
            timer.add("copy", t2 - t1)
            timer.add("encode", t3 - t2)
            n += 1
        wall = time.perf_counter() - start
    return _finish(timer, settings, wall, n)


def bench_tracking(clip: Path, settings: BenchSettings) -> dict:
    """Landmark tracking + pose (+ expression, ratios) + masks per frame (the analysis hot path)."""
    timer = StageTimer()
    n = 0
    with FaceTracker(TrackerConfig()) as tracker, Segmenter() as seg:
        start = time.perf_counter()
        for vf in iter_video(clip, max_frames=settings.frames):
            t0 = time.perf_counter()
            tracker.update(vf.image, vf.index, vf.time)
            t1 = time.perf_counter()
            seg.foreground(vf.image)
            t2 = time.perf_counter()
            timer.add("landmarks+pose", t1 - t0)
            timer.add("masks", t2 - t1)
            n += 1
        wall = time.perf_counter() - start
    return _finish(timer, settings, wall, n)


def bench_animate(source: Path, clip: Path, renderer: str, settings: BenchSettings) -> dict:
    """The whole per-frame path of ``faceanim animate`` for one renderer, stage by stage."""
    animator = Animator.prepare(read_image(source), AnimatorConfig(renderer=renderer))
    face = animator.faces[0]
    timer = StageTimer()
    reference = None
    motions: list[Motion] = []
    n = 0
    with tempfile.TemporaryDirectory() as tmp, FaceTracker(TrackerConfig()) as tracker, \
            VideoWriter(Path(tmp) / "out.mp4", 25) as writer:
        it = iter_video(clip, max_frames=settings.frames)
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            vf = next(it, None)
            if vf is None:
                break
            t1 = time.perf_counter()
            tf = tracker.update(vf.image, vf.index, vf.time)
            t2 = time.perf_counter()
            if tf.state is None:
                continue
            motion = Motion.from_state(tf.state)
            reference = reference or motion
            target = transfer_motion(face.source.state, motion, reference, animator.config.transfer)
            t3 = time.perf_counter()
            out = animator.renderer.render(face.renderer_state, target)
            t4 = time.perf_counter()
            frame = paste_back(face.source, out, face.paste)
            t5 = time.perf_counter()
            writer.write(frame)
            t6 = time.perf_counter()
            for stage, a, b in (("decode", t0, t1), ("landmarks", t1, t2), ("motion", t2, t3),
                                ("render", t3, t4), ("paste_back", t4, t5), ("encode", t5, t6)):
                timer.add(stage, b - a)
            timer.add("motion+render+paste", t5 - t2)
            motions.append(motion)
            n += 1
        wall = time.perf_counter() - start
    res = _finish(timer, settings, wall, n)
    res["total_median_ms"] -= res["stages"]["motion+render+paste"]["median_ms"]  # a sum of stages, not a stage
    res["fps"] = 1000.0 / res["total_median_ms"]
    # The same motions again with nothing else running (no decoder, tracker or encoder threads competing
    # for the two cores): the cost of the hot path itself.
    isolated = StageTimer()
    for motion in motions:
        t0 = time.perf_counter()
        target = transfer_motion(face.source.state, motion, reference, animator.config.transfer)
        out = animator.renderer.render(face.renderer_state, target)
        paste_back(face.source, out, face.paste)
        isolated.add("motion+render+paste", time.perf_counter() - t0)
    res["isolated"] = isolated.summary(settings.warmup)["motion+render+paste"]
    return res


def run_bench(source: Path, clip: Path, renderers: Sequence[str], settings: BenchSettings = BenchSettings()) -> dict:
    """All configurations in one run, each with its ratio to the reference pass."""
    cv2.setNumThreads(settings.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    ref = bench_reference(clip, settings)
    out = {
        "clip": clip.name,
        "source": source.name,
        "threads": settings.threads,
        "cv2_threads": cv2.getNumThreads(),
        "cpu_count": os.cpu_count(),
        "frames": settings.frames,
        "reference": ref,
        "tracking": bench_tracking(clip, settings),
        "renderers": {},
    }
    out["tracking"]["ratio_to_reference"] = out["tracking"]["total_median_ms"] / ref["total_median_ms"]
    for name in renderers:
        r = bench_animate(source, clip, name, settings)
        r["ratio_to_reference"] = r["total_median_ms"] / ref["total_median_ms"]
        out["renderers"][name] = r
    return out


def format_bench(result: dict) -> str:
    """A readable table of :func:`run_bench`'s result."""
    ref = result["reference"]
    lines = [f"clip {result['clip']}, source {result['source']}, {result['threads']} threads, "
             f"{result['frames']} frames",
             f"reference (decode+copy+encode): {ref['total_median_ms']:.2f} ms/frame median"]
    tr = result["tracking"]
    lines.append(f"tracking (landmarks+pose+masks): {tr['total_median_ms']:.2f} ms/frame "
                 f"= {tr['ratio_to_reference']:.2f}x reference; " + ", ".join(
                     f"{k} {v['median_ms']:.2f}/{v['p95_ms']:.2f}" for k, v in tr["stages"].items()))
    for name, r in result["renderers"].items():
        stages = ", ".join(f"{k} {v['median_ms']:.2f}/{v['p95_ms']:.2f}" for k, v in r["stages"].items())
        lines.append(f"{name}: {r['total_median_ms']:.2f} ms/frame ({r['fps']:.1f} FPS) "
                     f"= {r['ratio_to_reference']:.2f}x reference, peak RSS {r['peak_rss_mb']:.0f} MB")
        lines.append(f"  median/p95 ms: {stages}")
        iso = r.get("isolated")
        if iso:
            lines.append(f"  motion+render+paste alone (nothing else running): "
                         f"{iso['median_ms']:.2f}/{iso['p95_ms']:.2f} ms")
    return "\n".join(lines)
