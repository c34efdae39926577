"""``faceanim batch``: parse, plan, run, print the summary and the failures."""

from __future__ import annotations

import argparse

from faceanim.errors import FaceAnimError

BATCH_EXAMPLES = """\
examples:
  faceanim batch --sources portraits/ --drivers clips/ template:blink -o out/batch
  faceanim batch --pairs pairs.csv -o out/batch --renderer analytic --max-frames 100
  faceanim batch --sources a.jpg b.png --drivers d0.mp4 --ray local -o out/batch      # Ray on this machine
  faceanim batch --sources portraits/ --drivers clips/ --ray ray://head:10001 -o /shared/out
  faceanim batch --sources portraits/ --drivers speech.wav -o out/talking       # audio: the speech pipeline

Outputs are named PORTRAIT__DRIVER.mp4 (.png for a driving image). A run skips outputs that already exist,
so rerunning an interrupted batch resumes it; failures are listed at the end and do not stop the batch
(exit 1 if any failed). pairs.csv: a header with source,driving and optionally output; relative paths are
taken from the CSV's folder. With --ray, paths must be visible to every Ray worker (a shared filesystem) and
faceanim must be installed on them; pip install 'faceanim[ray]' for the client.
"""


def register(add, renderers: list[str]) -> None:
    from faceanim.cli import add_animation_options, positive_int

    p = add("batch", "animate many portraits with many drivers (resumable; local processes or Ray)", BATCH_EXAMPLES)
    g = p.add_argument_group("jobs")
    g.add_argument("--sources", nargs="+", metavar="S", help="portrait images or folders of them")
    g.add_argument("--drivers", nargs="+", metavar="D",
                   help="driving videos, images, speech audio, motion .npz, template:NAME, or folders of them")
    g.add_argument("--pairs", metavar="CSV", help="a CSV of source,driving[,output] pairs instead")
    g.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="local processes (default: the number of cores)")
    g.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the jobs as Ray tasks on this cluster ('local' starts one on this machine)")
    add_animation_options(p, renderers)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from faceanim.batch.plan import plan_csv, plan_grid
    from faceanim.batch.run import run_batch
    from faceanim.cli import job_options

    if args.pairs and (args.sources or args.drivers):
        raise FaceAnimError("give either --pairs CSV or --sources and --drivers, not both")
    if not args.pairs and not (args.sources and args.drivers):
        raise FaceAnimError("give --sources and --drivers (files or folders), or --pairs CSV")
    if args.audio is not None:
        raise FaceAnimError("--audio is not available in a batch (each driver's own audio is used)")
    items = plan_csv(args.pairs, args.out) if args.pairs else plan_grid(args.sources, args.drivers, args.out)
    options = job_options(args)
    report = run_batch(items, options, workers=args.workers, ray_address=args.ray, progress=args.progress)
    print(f"{report.done} written, {report.skipped} already done, {len(report.failed)} failed "
          f"(of {report.total}) in {args.out}")
    for r in report.failed:
        print(f"  failed: {r.item.source} × {r.item.driving}: {r.error}")
    return 1 if report.failed else 0
