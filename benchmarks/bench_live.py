"""Live mode on a 512×512 clip standing in for a camera (paced at its frame rate): sustained FPS, median/p95
glass-to-glass latency (capture stamp to output) and the share of dropped frames, per renderer."""

from __future__ import annotations

from _common import emit, parser
from faceanim.live.bench import measure_live


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--renderers", nargs="+", default=["analytic"])
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: the whole clip)")
    p.add_argument("--overlay", action="store_true", help="include drawing the FPS/latency overlay")
    args = p.parse_args()
    results = {r: measure_live(args.source, args.clip, renderer=r, seconds=args.seconds, max_frames=args.frames,
                               overlay=args.overlay) for r in args.renderers}
    emit(results, args.json)


if __name__ == "__main__":
    main()
