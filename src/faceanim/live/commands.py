"""``faceanim live``: animate a portrait from a camera (or a clip/URL standing in for one), as it happens."""

from __future__ import annotations

import argparse
from pathlib import Path

LIVE_EXAMPLES = """\
examples:
  faceanim live --source me.jpg --camera 0 -o live.mp4              # webcam 0, recorded
  faceanim live --source me.jpg --camera 0 --virtual-cam --overlay  # as a webcam for video calls
  faceanim live --source me.jpg --camera driving.mp4 -o out.mp4     # a clip paced like a camera
  faceanim live --source me.jpg --camera rtsp://host/stream --seconds 60 -o out.mp4
  faceanim live --source me.jpg --camera clip_512.mp4 --bench --json out/live.json

Frames the renderer cannot keep up with are dropped (never queued), so latency stays flat. --bench reports
sustained FPS, median/p95 glass-to-glass latency (capture to output) and the share of dropped frames.
Ctrl+C stops and finishes the recording. The web app (`faceanim app`) has a live tab for the browser's webcam.
"""


def register(add, renderers: list[str]) -> None:
    from faceanim.cli import add_animation_options

    p = add("live", "animate a portrait live from a camera, a video file or a stream URL", LIVE_EXAMPLES)
    p.add_argument("--source", "-s", required=True, metavar="S", help="the portrait to animate")
    p.add_argument("--camera", "-c", default="0", metavar="N|FILE|URL",
                   help="camera number (default: 0), or a video file / stream URL paced at its own frame rate")
    p.add_argument("-o", "--output", metavar="OUT", default=None, help="record the animated frames to this video")
    p.add_argument("--virtual-cam", action="store_true", help="send the frames to a virtual camera (pyvirtualcam)")
    p.add_argument("--overlay", action="store_true", help="draw FPS, latency and dropped frames on the output")
    p.add_argument("--seconds", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--loop", action="store_true", help="loop a video file input")
    p.add_argument("--bench", action="store_true", help="print FPS, latency and drop share at the end")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the measurements as JSON")
    add_animation_options(p, renderers)
    p.set_defaults(func=cmd_live)


def cmd_live(args: argparse.Namespace) -> int:
    from faceanim.cli import job_options
    from faceanim.errors import FaceAnimError, MediaError
    from faceanim.live.capture import Capture, CaptureSpec
    from faceanim.live.runner import LiveSettings, run_live
    from faceanim.live.sinks import FileSink, VirtualCamSink
    from faceanim.live.stream import open_session
    from faceanim.media.image import read_image
    from faceanim.media.provenance import provenance_metadata
    from faceanim.pipeline.animator import Animator
    from faceanim.pipeline.run import check_output_path

    if args.audio is not None:
        raise FaceAnimError("live mode has no audio track; --audio is for `faceanim animate`")
    if not Path(args.source).is_file():
        raise MediaError("no such file", path=args.source)
    if args.output is not None:
        check_output_path(args.output, args.source, args.camera)
    if args.seconds is not None and not args.seconds > 0:
        raise FaceAnimError(f"--seconds must be > 0, got {args.seconds}")
    options = job_options(args)
    spec = CaptureSpec.parse(args.camera)
    prepared = Animator.prepare(read_image(args.source), options.animator, options.face_index, path=args.source)
    capture = Capture(spec, loop=args.loop)
    sinks = []
    try:
        if args.virtual_cam:
            sinks.append(VirtualCamSink(capture.fps))
        if args.output is not None:
            meta = provenance_metadata(options.animator.renderer, mode="live") if options.provenance else None
            sinks.append(FileSink(args.output, capture.fps, meta))
    except BaseException:
        capture.close()
        raise
    session = open_session(prepared, options.animator, args.smoothing)
    settings = LiveSettings(overlay=args.overlay, seconds=args.seconds, max_frames=args.max_frames)
    if not args.quiet:
        print(f"live: {spec.target} at {float(capture.fps):.2f} fps -> "
              f"{', '.join(filter(None, [args.output, 'virtual camera' if args.virtual_cam else None])) or 'nowhere'}"
              " (Ctrl+C stops)", flush=True)
    try:
        report = run_live(session, capture, sinks, settings)
    finally:
        session.close()
    if args.output is not None:
        print(f"wrote {args.output} ({report.rendered} frames)")
    result = {"source": Path(args.source).name, "camera": spec.target, "renderer": options.animator.renderer,
              **report.as_dict()}
    if args.bench or not sinks:
        lat = result["latency_ms"]
        print(f"captured {report.captured} frames at {report.input_fps:.2f} fps; rendered {report.rendered}, "
              f"dropped {report.dropped} ({100 * report.drop_share:.1f}%); sustained {report.fps:.1f} fps; "
              f"latency median {lat['median']} ms, p95 {lat['p95']} ms")
    if args.json:
        from faceanim.eval.report import write_json

        write_json(args.json, result)
    return 0
