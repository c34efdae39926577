"""Live input: a camera through OpenCV, or a video file / stream URL paced at its own frame rate like a camera.

Each frame is stamped with ``time.monotonic()`` when it is captured (for a file: when its presentation time
comes round on the wall clock). That stamp travels with the frame to its output: glass-to-glass latency.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceanim.errors import MediaError
from faceanim.media.image import resize_max_side
from faceanim.media.kinds import is_video_path
from faceanim.media.video import iter_video, probe_video


@dataclass(frozen=True)
class CapturedFrame:
    index: int
    image: np.ndarray  # RGB uint8
    capture_time: float  # time.monotonic() when the frame was captured


@dataclass(frozen=True)
class CaptureSpec:
    """What ``--camera`` names: a camera number, a video file or a stream URL."""

    kind: str  # camera | file | url
    target: str

    @classmethod
    def parse(cls, text: str) -> CaptureSpec:
        if text.isdigit():
            return cls("camera", text)
        if "://" in text:
            return cls("url", text)
        p = Path(text)
        if not p.is_file():
            raise MediaError("no such camera or video file", path=text)
        if not is_video_path(p):
            raise MediaError("not a video file (use a camera number, a video or a stream URL)", path=text)
        return cls("file", text)


class Capture:
    """Frames from ``spec`` in real time; iterate it (from one thread). ``fps`` is the source's nominal rate."""

    def __init__(self, spec: CaptureSpec, max_side: int | None = None, loop: bool = False) -> None:
        self.spec = spec
        self.max_side = max_side
        self.loop = loop
        self.fps: Fraction = Fraction(30)
        self._cap = None
        if spec.kind == "file":
            self.fps = probe_video(spec.target).fps
        else:
            import cv2

            with contextlib.suppress(AttributeError):  # OpenCV's own multi-line warnings: our one line says it
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            self._cap = cv2.VideoCapture(int(spec.target) if spec.kind == "camera" else spec.target)
            if not self._cap.isOpened():
                self._cap.release()
                what = f"camera {spec.target}" if spec.kind == "camera" else spec.target
                raise MediaError("cannot open (no such camera, or the stream is unreachable)", path=what)
            fps = self._cap.get(cv2.CAP_PROP_FPS)
            if fps and 1.0 <= fps <= 240.0:
                self.fps = Fraction(fps).limit_denominator(1001)

    def __iter__(self) -> Iterator[CapturedFrame]:
        return self._file_frames() if self.spec.kind == "file" else self._device_frames()

    def _scaled(self, image: np.ndarray) -> np.ndarray:
        return resize_max_side(image, self.max_side)[0] if self.max_side else image

    def _file_frames(self) -> Iterator[CapturedFrame]:
        """The file's frames released at their presentation times on the wall clock (a camera stand-in)."""
        index = 0
        while True:
            start: float | None = None  # the clock starts at the first decoded frame (opening takes a while)
            for vf in iter_video(self.spec.target):
                if start is None:
                    start = time.monotonic() - vf.time
                due = start + vf.time
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                yield CapturedFrame(index, self._scaled(vf.image), time.monotonic())
                index += 1
            if not self.loop or index == 0:
                return

    def _device_frames(self) -> Iterator[CapturedFrame]:
        import cv2

        assert self._cap is not None
        index = 0
        while True:
            ok, bgr = self._cap.read()  # blocks until the device delivers the next frame
            if not ok:
                return
            t = time.monotonic()
            yield CapturedFrame(index, self._scaled(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), t)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
