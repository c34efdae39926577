"""``faceanim app``: serve the web app (registered by the CLI's COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

APP_EXAMPLES = """\
examples:
  faceanim app                         # http://127.0.0.1:7860, in your browser
  faceanim app --port 0 --max-frames 300
  faceanim app --host 0.0.0.0          # reachable from other machines: only on a network you trust

Tabs: video-driven (a driving video or a bundled template), image-driven (an expression image),
speech-driven (when the speech stage is installed) and live (your browser's webcam). Sliders update a
still preview at once; "Render" makes the whole video. Runs offline: no CDN assets, no analytics.
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register(add, renderers: list[str]) -> None:
    p = add("app", "serve the web app (portrait + driving video, image, speech or webcam)", APP_EXAMPLES)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860; 0 = any free port)")
    p.add_argument("--max-upload-mb", type=float, default=100.0, metavar="MB", help="largest upload (default: 100)")
    p.add_argument("--max-seconds", type=float, default=120.0, metavar="S",
                   help="longest driving video (default: 120)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="cap frames per render job")
    p.add_argument("--no-provenance", action="store_true",
                   help="do not embed the 'synthetic, made with faceanim' mark (not recommended)")
    p.add_argument("--open", action="store_true", help="open the app in a browser")
    p.set_defaults(func=cmd_app)


def cmd_app(args: argparse.Namespace) -> int:
    from faceanim.app.uploads import UploadLimits
    from faceanim.errors import FaceAnimError

    try:
        from faceanim.app.ui import AppConfig, launch
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "gradio":
            raise FaceAnimError("the web app needs Gradio: pip install 'faceanim[app]'") from None
        raise
    port = _free_port() if args.port == 0 else args.port
    limits = UploadLimits(max_mb=args.max_upload_mb, max_seconds=args.max_seconds)
    with tempfile.TemporaryDirectory(prefix="faceanim-app-") as tmp:
        config = AppConfig(Path(tmp), limits, args.max_frames, not args.no_provenance)
        print(f"faceanim app on http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{port} (Ctrl+C stops)",
              flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            launch(config, args.host, port, open_browser=args.open)
    return 0
