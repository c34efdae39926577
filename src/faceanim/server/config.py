"""The server's settings: bind address, token and the limits every request is checked against."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from faceanim.errors import FaceAnimError

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one upload, job or stream may use."""

    upload_bytes: int = 50 * MB  # per uploaded file
    image_pixels: int = 4096 * 4096  # a portrait or driving image (checked from the header, before decoding)
    video_pixels: int = 1920 * 1088  # one driving-video frame
    seconds: float = 120.0  # a driving video or audio file
    frame_bytes: int = 4 * MB  # one WebSocket message
    frame_pixels: int = 1920 * 1088  # one streamed driving frame
    active_jobs: int = 16  # queued + running jobs; more are refused (503)
    sessions: int = 8  # concurrent WebSocket sessions; more are refused (close 1013)
    idle_seconds: float = 60.0  # a WebSocket session with no message for this long is closed


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required (Bearer header, or ?token= on the WebSocket) when set
    limits: Limits = Limits()
    retention_seconds: float = 3600.0  # a finished job's files are deleted this long after it ends
    job_workers: int = 1  # jobs rendered at once (each uses both cores through the engine)
    jobs_dir: str | None = None  # parent of the per-job temp dirs (default: the system temp dir)

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise FaceAnimError(
                f"refusing to listen on {self.host} without a token: pass --token (or FACEANIM_TOKEN), "
                "or bind to 127.0.0.1"
            )
        if self.token is not None and len(self.token) < 16:
            raise FaceAnimError("the token must be at least 16 characters long")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
