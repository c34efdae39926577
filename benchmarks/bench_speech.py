"""Speech-driven animation: motion-generation speed (× real time), whole ``speak`` speed (motion + render +
encode, × real time), peak memory of a short vs a long input, and the lip-sync acceptance numbers on the
held-out talking clips (LMD / LMD-v against the energy-envelope and still baselines, correlation, A/V offset,
seed diversity, silence), and diagnostics of LMD-v on the same clips (velocity amplitude and correlation of the
generated mouth against the real one; how much of the real landmarks' velocity is frame-to-frame jitter).

    python benchmarks/bench_speech.py                       # everything, default inputs
    python benchmarks/bench_speech.py --only speed --seconds 20
    python benchmarks/bench_speech.py --only diagnostics    # what LMD-v is made of (not part of the acceptance)
    python benchmarks/bench_speech.py --only memory --long /tmp/speech_60min.mp3
    python benchmarks/bench_speech.py --make-long /tmp/speech_60min.mp3 --minutes 60   # build the long input
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import DATA, emit

DEFAULT_AUDIO = DATA / "audio" / "musetalk_eng.wav"  # 60 s English speech
DEFAULT_SOURCE = DATA / "portraits" / "liveportrait_s42.jpg"  # 512×512


def motion_speed(weights: str | None, audio: Path, seconds: float, threads: int) -> dict:
    """Seconds of speech per second of compute for motion generation (features + VAD + network + Motion)."""
    import torch

    from faceanim.audio.generate import generate, speech_input
    from faceanim.audio.targets import style_vector
    from faceanim.audio.weights import load_audio2motion
    from faceanim.face.analyze import describe_face
    from faceanim.face.model import load_face_model
    from faceanim.media.audio import read_audio
    from faceanim.pipeline.speak import SpeechStyle, speech_motions

    torch.set_num_threads(threads)
    model = load_audio2motion(weights)
    x = read_audio(audio, 16000)[: int(seconds * 16000)]
    src = describe_face(load_face_model().canonical * 100.0 + np.array([256.0, 256.0, 0.0]))
    list(generate(model, speech_input([x[:32000]]), style_vector(src.expression)))  # warm-up
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for _ in generate(model, speech_input([x[i : i + 32000] for i in range(0, x.size, 32000)]),
                                style_vector(src.expression)))
    net, net_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    m = sum(1 for _ in speech_motions(model, src, audio, SpeechStyle(), max_seconds=seconds))
    full, full_cpu = time.perf_counter() - t, time.process_time() - c
    dur = x.size / 16000
    return {"audio_seconds": round(dur, 2), "frames": n, "network_x_realtime": round(dur / net, 1),
            "network_x_realtime_per_cpu_second": round(dur / net_cpu, 1),
            "motion_x_realtime": round(dur / full, 1), "motion_x_realtime_per_cpu_second": round(dur / full_cpu, 1),
            "motion_frames": m,
            "note": "motion = decode + log-mel + VAD + network + per-frame Motion; network = features + network; "
                    "x_realtime is wall-clock, per_cpu_second divides by this process's CPU time"}


def speak_speed(weights: str | None, source: Path, audio: Path, seconds: float, renderer: str) -> dict:
    """The whole speak pipeline on ``seconds`` of audio at the portrait's own resolution."""
    from faceanim.pipeline.animator import AnimatorConfig
    from faceanim.pipeline.speak import SpeakOptions, speak_file

    out = Path("/tmp/bench_speech_speak.mp4")
    opts = SpeakOptions(animator=AnimatorConfig(renderer=renderer), weights=weights, max_seconds=seconds,
                        progress=False)
    t = time.perf_counter()
    r = speak_file(str(source), str(audio), str(out), opts)
    wall = time.perf_counter() - t
    out.unlink(missing_ok=True)
    return {"renderer": renderer, "frames": r.frames, "audio_seconds": round(r.seconds, 2),
            "wall_seconds": round(wall, 2), "fps": round(r.frames / wall, 1),
            "x_realtime": round(r.seconds / wall, 2), "note": "includes loading the model and preparing the source"}


def peak_rss(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``faceanim`` run in a child process."""
    # a fresh wrapper process per run, so each peak is that run's own (RUSAGE_CHILDREN keeps the maximum)
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
             " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "faceanim", "-q", *args], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024.0, time.perf_counter() - t


def memory(weights: str | None, source: Path, short: Path, long: Path, renderer: str) -> dict:
    """Peak RSS of speak on a 4-second clip, then on the long input (separate processes)."""
    w = ["--weights", weights] if weights else []
    common = ["--source", str(source), "--renderer", renderer, *w]
    s_rss, _ = peak_rss(["speak", *common, "--audio", str(short), "-o", "/tmp/bench_short.mp4",
                              "--max-seconds", "4"])
    l_rss, l_wall = peak_rss(["speak", *common, "--audio", str(long), "-o", "/tmp/bench_long.mp4"])
    from faceanim.media.audio import audio_duration

    dur = audio_duration(long)
    for p in ("/tmp/bench_short.mp4", "/tmp/bench_long.mp4"):
        Path(p).unlink(missing_ok=True)
    return {"short_peak_rss_mib": round(s_rss), "long_peak_rss_mib": round(l_rss), "long_audio_seconds": round(dur),
            "long_wall_seconds": round(l_wall), "long_x_realtime": round(dur / l_wall, 2),
            "within_1gib": l_rss - s_rss < 1024}


def make_long(path: Path, minutes: float, sources: list[Path]) -> Path:
    """A long mp3 (16 kHz mono) by concatenating real speech files, with 2 s pauses, until ``minutes``."""
    import av

    from faceanim.media.audio import read_audio

    clips = [read_audio(p, 16000) for p in sources]
    need = int(minutes * 60 * 16000)
    pause = np.zeros(32000, np.float32)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libmp3lame", rate=16000, layout="mono")
        st.bit_rate = 48000
        written, k = 0, 0
        while written < need:
            x = np.concatenate([clips[k % len(clips)], pause])[: need - written]
            k += 1
            for i in range(0, x.size, 1152):
                block = x[i : i + 1152]
                frame = av.AudioFrame.from_ndarray(block[None].astype(np.float32), format="flt", layout="mono")
                frame.sample_rate = 16000
                frame.pts = written + i
                for pkt in st.encode(frame):
                    out.mux(pkt)
            written += x.size
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def acceptance(weights: str | None, cache: Path) -> dict:
    from faceanim.audio.evaluate import evaluate_speech, silence_check
    from faceanim.audio.weights import load_audio2motion
    from faceanim.face.model import load_face_model

    model = load_audio2motion(weights)
    result = evaluate_speech(model, cache)
    result["silence"] = silence_check(model, load_face_model().canonical)
    return result


def diagnostics(weights: str | None, cache: Path, seed: int = 0) -> dict:
    """LMD-v, taken apart, on the acceptance clips (same generation path, same ground truth):

    - ``vel_rms_ratio`` / ``vel_corr``: RMS of the generated mouth's 2-D landmark velocity over the real one's, and
      their correlation (under-prediction shows as a small ratio; jitter as a large ratio with a low correlation);
    - ``gt_smoothed_lmdv_sigma{s}``: LMD-v of the *real* landmarks after Gaussian temporal smoothing with sigma s
      against themselves: the part of the metric that sits in frame-to-frame (tracking-jitter-like) motion — the
      generation path smooths the mouth with sigma 1.5, so ``..._sigma1.5`` is what even a perfect but smoothed
      prediction would score;
    - ``gt_vel_lag1_autocorr``: lag-1 autocorrelation of the real velocity (white tracking jitter gives < 0);
    - ``gt_pca{k}_lmdv``: LMD-v of the real mouth projected on its own first k principal components (an oracle
      that knows the true mouth opening etc. but nothing finer)."""
    from scipy.ndimage import gaussian_filter1d

    from faceanim.audio.evaluate import UNITS, _generated
    from faceanim.audio.targets import landmark_groups, rest_expression
    from faceanim.audio.weights import load_audio2motion
    from faceanim.eval.metrics import lmd_v
    from faceanim.train.talking_data import load_clip, load_index

    model = load_audio2motion(weights)
    g = landmark_groups()
    rows = []
    for r in load_index(cache):
        if r.split != "val" or r.excluded or not r.frames:
            continue
        a = load_clip(cache / "clips" / f"{r.name}.npz")
        expr = a["expression"].astype(np.float64)
        rest = rest_expression(expr, a["lip_open"])
        gt = expr[:, g.mouth] * UNITS
        pred = _generated(model, r.source, rest, seed, r.frames)[0][:, g.mouth] * UNITS
        vp, vg = np.diff(pred[..., :2], axis=0).ravel(), np.diff(gt[..., :2], axis=0).ravel()
        row = {"clip": r.name, "frames": r.frames, "vel_rms_ratio": float(np.sqrt((vp**2).mean() / (vg**2).mean())),
               "vel_corr": float(np.corrcoef(vp, vg)[0, 1]),
               "still_lmdv": lmd_v(np.repeat(rest[g.mouth][None] * UNITS, r.frames, 0), gt)}
        for sigma in (0.7, 1.0, 1.5):
            row[f"gt_smoothed_lmdv_sigma{sigma}"] = lmd_v(gaussian_filter1d(gt, sigma, axis=0, mode="nearest"), gt)
        v = np.diff(gt[..., :2], axis=0).reshape(r.frames - 1, -1)
        row["gt_vel_lag1_autocorr"] = float((v[1:] * v[:-1]).sum() / (v * v).sum())
        d = (gt - rest[g.mouth] * UNITS).reshape(r.frames, -1)
        u, sv, vt = np.linalg.svd(d - d.mean(0), full_matrices=False)
        for k in (1, 2, 4):
            rec = (d.mean(0) + (u[:, :k] * sv[:k]) @ vt[:k]).reshape(gt.shape) + rest[g.mouth] * UNITS
            row[f"gt_pca{k}_lmdv"] = lmd_v(rec, gt)
        rows.append(row)
    w = np.array([r["frames"] for r in rows], np.float64)
    keys = [k for k in rows[0] if k not in ("clip", "frames")] if rows else []
    return {"clips": rows, "mean": {k: round(float(np.average([r[k] for r in rows], weights=w)), 4) for k in keys}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weights", default=None)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    p.add_argument("--seconds", type=float, default=60.0, help="speech used for the speed runs")
    p.add_argument("--renderer", default="analytic")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "out" / "talking_cache")
    p.add_argument("--long", type=Path, default=None, help="a long speech file for the memory run")
    p.add_argument("--only", choices=("speed", "memory", "acceptance", "diagnostics"), action="append", default=None)
    p.add_argument("--make-long", type=Path, default=None, metavar="MP3")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.make_long:
        sources = sorted((DATA / "audio").glob("*.wav"))
        print(make_long(a.make_long, a.minutes, sources))
        return
    todo = a.only or ["speed", "acceptance"] + (["memory"] if a.long else [])
    result: dict = {}
    if "speed" in todo:
        result["motion"] = motion_speed(a.weights, a.audio, a.seconds, a.threads)
        result["speak"] = speak_speed(a.weights, a.source, a.audio, a.seconds, a.renderer)
    if "acceptance" in todo:
        result["acceptance"] = acceptance(a.weights, a.cache)
    if "diagnostics" in todo:
        result["diagnostics"] = diagnostics(a.weights, a.cache)
    if "memory" in todo:
        if a.long is None:
            raise SystemExit("--only memory needs --long FILE (make one with --make-long)")
        result["memory"] = memory(a.weights, a.source, a.audio, a.long, a.renderer)
    emit(result, a.json)
    if "acceptance" in result:
        print(json.dumps(result["acceptance"]["mean"], indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
