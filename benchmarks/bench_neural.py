"""MobilePortrait tiers: GMACs and parameters per tier, per-frame network latency (PyTorch fp32 / bf16 U-Nets /
onnxruntime), and the wall-clock end to end of the real file job with ``mobileportrait`` next to ``analytic``
and the trivial reference (``faceanim.eval.bench``), all in one sitting.

Random weights are enough for speed (the shipped weights have the CPU tier's shape). Run it on a quiet machine:
    python benchmarks/bench_neural.py --frames 150 --json out/bench_neural.json
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import emit, parser
from faceanim.eval.bench import BenchSettings, run_bench
from faceanim.models import create_model
from faceanim.models.mobileportrait.model import FrameNetwork
from faceanim.train.export import example_inputs, export_bytes, onnx_session, run_session

TIERS = ("mobileportrait_cpu", "mobileportrait_4g", "mobileportrait_7g", "mobileportrait_16g")


def _median_ms(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


def network_rows(tiers: tuple[str, ...], repeats: int, onnx: bool, windows: tuple[int, ...]) -> list[dict]:
    """One row per tier and synthesis extent (the whole crop, or a window² square around the mouth)."""
    rows = []
    for name in tiers:
        model = create_model(name).eval()
        for window in (None, *windows):
            inputs = example_inputs(model, window=window)
            net = FrameNetwork(model, window)
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                net(*inputs)
            row = {"tier": name, "synthesis": f"{window}² window" if window else "whole crop",
                   "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                   "gmacs_per_frame": fc.get_total_flops() / 2e9}
            with torch.no_grad():
                row["torch_fp32_ms"] = _median_ms(lambda n=net, x=inputs: n(*x), repeats)
                model.dense_motion.bf16 = model.synthesis.bf16 = True  # the renderer's bf16: U-Nets only
                row["torch_bf16_unets_ms"] = _median_ms(lambda n=net, x=inputs: n(*x), repeats)
                model.dense_motion.bf16 = model.synthesis.bf16 = False
            if onnx:
                session = onnx_session(export_bytes(model, window), threads=torch.get_num_threads())
                row["onnxruntime_ms"] = _median_ms(lambda s=session, x=inputs: run_session(s, x), repeats)
            rows.append(row)
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tiers", nargs="+", default=list(TIERS))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--windows", nargs="*", type=int, default=[128], help="mouth-window sizes to time as well")
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--renderers", nargs="+",
                   default=["analytic", "mobileportrait", "mobileportrait-onnx", "mobileportrait-full"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "networks": network_rows(tuple(args.tiers), args.repeats, not args.no_onnx,
                                                                    tuple(args.windows))}
    if not args.no_end_to_end:
        settings = BenchSettings(frames=args.frames, threads=args.threads)
        result["end_to_end"] = run_bench(args.source, args.clip, args.renderers, settings)
    emit(result, args.json)


if __name__ == "__main__":
    main()
