"""``faceanim serve``: run the HTTP/WebSocket server with uvicorn."""

from __future__ import annotations

import argparse
import os

from faceanim.cli import positive
from faceanim.errors import FaceAnimError

SERVE_EXAMPLES = """\
examples:
  faceanim serve                                   # http://127.0.0.1:8000, OpenAPI spec at /openapi.json
  faceanim serve --port 9000 --retention 600
  FACEANIM_TOKEN=$(openssl rand -hex 16) faceanim serve --host 0.0.0.0   # a non-local bind needs a token

  curl -F source=@me.jpg -F template=blink http://127.0.0.1:8000/v1/jobs          # -> {"id": ..., "state": ...}
  curl -F source=@me.jpg -F driving=@talk.mp4 http://127.0.0.1:8000/v1/jobs
  curl http://127.0.0.1:8000/v1/jobs/ID                # state and progress
  curl -o out.mp4 http://127.0.0.1:8000/v1/jobs/ID/result
  curl -X DELETE http://127.0.0.1:8000/v1/jobs/ID      # cancel, or delete a finished job

WebSocket streaming at ws://HOST:PORT/v1/stream: send the portrait, then JPEG frames; receive animated JPEGs
(see faceanim.server.stream for the protocol). With a token, send "Authorization: Bearer TOKEN" (HTTP) or
add ?token=TOKEN (WebSocket). Job files live in a private temp dir per job and are deleted after --retention.
"""


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own arena and rarely returns them: with a session's threads
    coming and going, RSS creeps up ~10 MB per session. Two arenas keep it flat (measured: plateau at ~310 MB)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass


def register(add, renderers: list[str]) -> None:
    p = add("serve", "serve the HTTP job API and WebSocket streaming (FastAPI + uvicorn)", SERVE_EXAMPLES)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, local only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--token", default=None, metavar="T",
                   help="require this token (default: $FACEANIM_TOKEN); needed for a non-local --host")
    p.add_argument("--max-upload-mb", type=positive, default=50, metavar="MB", help="per uploaded file (default 50)")
    p.add_argument("--max-seconds", type=positive, default=120, metavar="S",
                   help="longest driving video or audio (default 120)")
    p.add_argument("--max-megapixels", type=positive, default=16.7, metavar="MP",
                   help="largest uploaded image (default 16.7)")
    p.add_argument("--retention", type=positive, default=3600, metavar="S",
                   help="seconds a finished job's files are kept (default 3600)")
    p.add_argument("--sessions", type=int, default=8, metavar="N", help="concurrent WebSocket sessions (default 8)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="jobs rendered at once (default 1)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from faceanim.server.app import create_app
    except ImportError as e:
        missing = e.name or "fastapi"
        raise FaceAnimError(f"serve needs the server extra: pip install 'faceanim[server]' ({missing})") from None
    from faceanim.server.config import MB, Limits, ServerConfig

    if not 0 < args.port < 65536:
        raise FaceAnimError(f"--port must be 1-65535, got {args.port}")
    if args.sessions < 1 or args.workers < 1:
        raise FaceAnimError("--sessions and --workers must be at least 1")
    limits = Limits(upload_bytes=int(args.max_upload_mb * MB), seconds=args.max_seconds,
                    image_pixels=int(args.max_megapixels * 1e6), sessions=args.sessions)
    config = ServerConfig(host=args.host, port=args.port, token=args.token or os.environ.get("FACEANIM_TOKEN"),
                          limits=limits, retention_seconds=args.retention, job_workers=args.workers)
    _limit_malloc_arenas()
    app = create_app(config)
    print(f"faceanim serving on http://{args.host}:{args.port} (OpenAPI: /openapi.json, stream: /v1/stream)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning",
                ws_max_size=max(limits.upload_bytes, limits.frame_bytes) + 1024,
                ws_max_queue=4,  # a client that outruns the reader is held back by TCP, not buffered
                timeout_graceful_shutdown=5)
    return 0
