"""Where live frames go: a video file (timed by capture time), a virtual camera, or nowhere (benchmarks)."""

from __future__ import annotations

import glob
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceanim.errors import FaceAnimError
from faceanim.media.video import VideoWriter


class FileSink:
    """An H.264 file; each frame is placed at its capture time, so dropped frames do not speed the video up."""

    def __init__(self, path: str | Path, fps: Fraction, metadata: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self._writer = VideoWriter(path, fps, metadata=metadata)
        self._start: float | None = None
        self._last = -1.0

    def write(self, image: np.ndarray, capture_time: float) -> None:
        if self._start is None:
            self._start = capture_time
        t = capture_time - self._start
        if t <= self._last:  # never two frames at one time
            return
        self._last = t
        self._writer.write(image, time=t)

    def close(self, error: BaseException | None = None) -> None:
        """Finish the file (or, after ``error``, discard it: nothing half-written stays)."""
        if error is None:
            self._writer.close()
        else:
            self._writer.__exit__(type(error), error, error.__traceback__)


class VirtualCamSink:
    """A virtual webcam (pyvirtualcam; on Linux a v4l2loopback device) other programs can open."""

    def __init__(self, fps: Fraction, device: str | None = None) -> None:
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError:
            raise FaceAnimError("--virtual-cam needs pyvirtualcam: pip install 'faceanim[live]'") from None
        if device is None and not glob.glob("/dev/video*") and Path("/dev").is_dir() and _is_linux():
            raise FaceAnimError("no virtual camera device: load v4l2loopback (modprobe v4l2loopback) first")
        self.fps = float(fps)
        self.device = device
        self._cam = None

    def write(self, image: np.ndarray, capture_time: float) -> None:
        if self._cam is None:
            import pyvirtualcam

            h, w = image.shape[:2]
            try:
                self._cam = pyvirtualcam.Camera(width=w, height=h, fps=self.fps, device=self.device)
            except RuntimeError as e:
                raise FaceAnimError(f"cannot open the virtual camera: {e}") from None
        self._cam.send(np.ascontiguousarray(image))

    def close(self, error: BaseException | None = None) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None


def _is_linux() -> bool:
    import sys

    return sys.platform.startswith("linux")
