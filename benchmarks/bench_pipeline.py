"""Wall-clock end to end of the real file job and per-stage latency of every renderer, as ratios to a reference."""

from __future__ import annotations

from _common import emit, parser
from faceanim.eval.bench import BenchSettings, run_bench
from faceanim.render.registry import available_renderers


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--renderers", nargs="+", default=available_renderers())
    args = p.parse_args()
    settings = BenchSettings(frames=args.frames, threads=args.threads)
    emit(run_bench(args.source, args.clip, args.renderers, settings), args.json)


if __name__ == "__main__":
    main()
