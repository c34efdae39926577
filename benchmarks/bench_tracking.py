"""Median/p95 ms per frame of landmark tracking (as file jobs run it) and masks on a 512×512 clip, 2 threads."""

from __future__ import annotations

import cv2

from _common import emit, parser
from faceanim.eval.bench import BenchSettings, bench_reference, bench_tracking


def main() -> None:
    args = parser(__doc__).parse_args()
    cv2.setNumThreads(args.threads)
    settings = BenchSettings(frames=args.frames, threads=args.threads)
    ref = bench_reference(args.clip, settings)
    track = bench_tracking(args.clip, settings)
    track["ratio_to_reference"] = track["stage_sum_ms"] / ref["stage_sum_ms"]
    emit({"clip": args.clip.name, "threads": args.threads, "reference": ref, "tracking": track}, args.json)


if __name__ == "__main__":
    main()
