"""Motion templates: a versioned, pickle-free ``.npz`` of per-frame motion, and bundled procedural ones.

A template carries motion without the driver's face (share a performance without sharing a face).

Format (``format == "faceanim-motion"``, ``version == 1``), arrays over T frames:
``rotation`` (T, 3, 3), ``translation`` (T, 3), ``scale`` (T,), ``expression`` (T, 478, 3) float32,
``eye_open`` (T, 2), ``lip_open`` (T,), ``gaze`` (T, 4), ``valid`` (T,) bool, ``fps`` (2,) int64 as
numerator/denominator, ``meta`` a JSON string, and optionally ``time`` (T,) float64: each frame's time in
seconds from the driver's start (variable frame rate; without it frame i is at i/fps). Translation and
scale are in the performer's pixels; only their change relative to frame 0 is used by relative transfer.

``TemplateReader`` streams a template frame by frame (each array decompressed once, in chunks) and
``TemplateWriter`` appends frame by frame (float32 chunks spilled to anonymous temp files, the ``.npz``
written atomically at close), so long templates stay bounded in memory both ways.
"""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from faceanim.errors import MediaError
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import MOUTH_CORNERS, N_LANDMARKS, load_face_model
from faceanim.face.ratios import eye_open_ratios, gaze_offsets, lip_open_ratio
from faceanim.motion.retarget import set_eye_open, set_lip_open
from faceanim.motion.types import Motion

FORMAT = "faceanim-motion"
VERSION = 1

#: Per-frame arrays: name -> (shape of one frame, dtype on disk).
_FIELDS: dict[str, tuple[tuple[int, ...], type]] = {
    "rotation": ((3, 3), np.float32),
    "translation": ((3,), np.float32),
    "scale": ((), np.float32),
    "expression": ((N_LANDMARKS, 3), np.float32),
    "eye_open": ((2,), np.float32),
    "lip_open": ((), np.float32),
    "gaze": ((4,), np.float32),
    "valid": ((), np.bool_),
}
_READ_ERRORS = (OSError, EOFError, KeyError, ValueError, IndexError, TypeError, zipfile.BadZipFile, zlib.error)
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class MotionTemplate:
    """Per-frame motions with their frame rate, free-form JSON ``meta`` and, for variable frame rate,
    each frame's time in seconds from the driver's start (``times``; None means frame i is at i/fps)."""

    motions: list[Motion]
    fps: Fraction = Fraction(25)
    meta: dict = field(default_factory=dict)
    times: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.motions)

    def frame_times(self) -> np.ndarray:
        """Each frame's time in seconds (float64, T)."""
        if self.times is not None:
            return np.asarray(self.times, np.float64)
        return np.arange(len(self.motions)) / float(self.fps)


# ----------------------------------------------------------------------------------------------- reading


def _member(zf: zipfile.ZipFile, name: str) -> IO[bytes]:
    if f"{name}.npy" not in zf.namelist():
        raise KeyError(f"array {name!r} is missing")
    return zf.open(f"{name}.npy")


def _read_small(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with _member(zf, name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


class _ArrayStream:
    """Rows of one ``.npy`` member, read front to back in chunks (never the whole array at once)."""

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self.f = _member(zf, name)
        self.whole: np.ndarray | None = None
        version = np.lib.format.read_magic(self.f)
        fortran = True
        if version in ((1, 0), (2, 0)):
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            self.shape, fortran, self.dtype = read_header(self.f)
        if fortran:  # a newer .npy header or Fortran order: read it whole (still without pickles)
            self.f.close()
            self.f = _member(zf, name)
            self.whole = np.lib.format.read_array(self.f, allow_pickle=False)
            self.shape, self.dtype = self.whole.shape, self.whole.dtype
        if self.dtype.hasobject or self.dtype.fields is not None or self.dtype.kind not in "biuf":
            raise ValueError(f"array {name!r} has unsupported dtype {self.dtype}")
        self.row_items = math.prod(self.shape[1:])
        self.done = 0

    def read(self, rows: int) -> np.ndarray:
        if self.whole is not None:
            out = self.whole[self.done : self.done + rows]
        else:
            want = rows * self.row_items * self.dtype.itemsize
            data = self.f.read(want)
            if len(data) != want:
                raise EOFError(f"array {self.name!r} is truncated")
            out = np.frombuffer(data, self.dtype).reshape((rows, *self.shape[1:]))
        self.done += rows
        return out

    def close(self) -> None:
        self.f.close()


class TemplateReader:
    """Open a motion template for streaming: ``fps``, ``meta``, ``len()`` and ``times`` up front, then
    ``for motion in reader`` (or ``reader.timed()`` for ``(time, motion)``) reads each array once, ``chunk``
    frames at a time, yielding float64 ``Motion`` per frame. Never unpickles (``allow_pickle=False``);
    raises MediaError naming the file for anything that is not a valid template (also while iterating).
    Iterating again re-reads from the start. Use as a context manager (or call ``close``).
    """

    def __init__(self, path: str | Path, chunk: int = 256) -> None:
        if chunk < 1:
            raise ValueError("chunk must be >= 1")
        self.path = Path(path)
        self.chunk = chunk
        if not self.path.is_file():
            raise MediaError("no such file" if not self.path.exists() else "not a file", path=self.path)
        try:
            self._zf = zipfile.ZipFile(self.path)
        except _READ_ERRORS as exc:
            raise self._error(exc) from None
        try:
            self._check()
        except MediaError:
            self.close()
            raise
        except _READ_ERRORS as exc:
            self.close()
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> MediaError:
        return MediaError(f"cannot read motion template ({exc.__class__.__name__}: {exc})", path=self.path)

    def _check(self) -> None:
        zf = self._zf
        fmt = _read_small(zf, "format")
        if fmt.dtype.kind != "U" or str(fmt) != FORMAT:
            raise MediaError(f"not a faceanim motion template (format {fmt!s})", path=self.path)
        version = int(_read_small(zf, "version"))
        if version > VERSION:
            raise MediaError(f"template version {version} is newer than supported {VERSION}", path=self.path)
        fps = _read_small(zf, "fps")
        if fps.shape != (2,) or fps.dtype.kind not in "iu":
            raise MediaError(f"motion template array 'fps' has shape {fps.shape}, expected (2,)", path=self.path)
        if int(fps[0]) <= 0 or int(fps[1]) <= 0:
            raise MediaError("motion template has a non-positive frame rate", path=self.path)
        self.fps = Fraction(int(fps[0]), int(fps[1]))
        meta = json.loads(str(_read_small(zf, "meta")))
        self.meta: dict[str, Any] = meta if isinstance(meta, dict) else {"meta": meta}
        streams = self._streams()
        try:
            self.frames = streams[0].shape[0] if streams[0].shape else 0
            for s in streams:
                expected = (self.frames, *_FIELDS[s.name][0])
                if s.shape != expected:
                    raise MediaError(f"motion template array {s.name!r} has shape {s.shape}, expected {expected}",
                                     path=self.path)
        finally:
            for s in streams:
                s.close()
        if self.frames == 0:
            raise MediaError("motion template has no frames", path=self.path)
        self.times: np.ndarray | None = None
        if "time.npy" in zf.namelist():
            times = _read_small(zf, "time")
            if times.shape != (self.frames,) or times.dtype.kind not in "fiu":
                raise MediaError(f"motion template array 'time' has shape {times.shape}, expected "
                                 f"({self.frames},)", path=self.path)
            times = times.astype(np.float64)
            if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
                raise MediaError("motion template frame times are not finite and increasing", path=self.path)
            self.times = times

    def _streams(self) -> list[_ArrayStream]:
        streams: list[_ArrayStream] = []
        try:
            for name in _FIELDS:
                streams.append(_ArrayStream(self._zf, name))
        except BaseException:
            for s in streams:
                s.close()
            raise
        return streams

    def __len__(self) -> int:
        return self.frames

    def frame_times(self) -> np.ndarray:
        """Each frame's time in seconds from the driver's start (float64, T)."""
        return self.times if self.times is not None else np.arange(self.frames) / float(self.fps)

    def __iter__(self) -> Iterator[Motion]:
        try:
            streams = self._streams()
        except _READ_ERRORS as exc:
            raise self._error(exc) from None
        try:
            for start in range(0, self.frames, self.chunk):
                rows = min(self.chunk, self.frames - start)
                try:
                    c = {s.name: s.read(rows) for s in streams}
                except _READ_ERRORS as exc:
                    raise self._error(exc) from None
                for i in range(rows):
                    yield Motion(
                        rotation=c["rotation"][i].astype(np.float64),
                        translation=c["translation"][i].astype(np.float64),
                        scale=float(c["scale"][i]),
                        expression=c["expression"][i].astype(np.float64),
                        eye_open=c["eye_open"][i].astype(np.float64),
                        lip_open=float(c["lip_open"][i]),
                        gaze=c["gaze"][i].astype(np.float64),
                        valid=bool(c["valid"][i]),
                    )
        finally:
            for s in streams:
                s.close()

    def timed(self) -> Iterator[tuple[float, Motion]]:
        """``(time in seconds from the driver's start, motion)`` per frame."""
        times = self.frame_times()
        for i, m in enumerate(self):
            yield float(times[i]), m

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> TemplateReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def load_template(path: str | Path) -> MotionTemplate:
    """Read a whole template (linear in its length; each array is decompressed once). Never unpickles
    (``allow_pickle=False``); checks format, version and shapes; MediaError naming the file otherwise."""
    with TemplateReader(path) as r:
        motions = list(r)
        times = tuple(float(t) for t in r.times) if r.times is not None else None
        return MotionTemplate(motions=motions, fps=r.fps, meta=r.meta, times=times)


# ----------------------------------------------------------------------------------------------- writing


class TemplateWriter:
    """Write a template frame by frame with bounded memory: ``append(motion, time=None)`` per frame, the
    ``.npz`` appears atomically at ``close()`` (or the end of a ``with`` block; an exception or zero frames
    leaves nothing behind). Frames are buffered as float32 in ``chunk``-frame blocks and spilled to anonymous
    temp files beside the output. ``time`` (seconds from the driver's start, strictly increasing) must be
    given for every frame or for none. ``meta`` (JSON-serialisable) may be updated until close.
    """

    def __init__(
        self, path: str | Path, fps: Fraction | int, meta: dict[str, Any] | None = None, chunk: int = 512
    ) -> None:
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if chunk < 1:
            raise ValueError("chunk must be >= 1")
        self.path = Path(path)
        self.fps = fps
        self.meta: dict[str, Any] = dict(meta or {})
        self.chunk = chunk
        self.frames = 0
        self._closed = True  # until the temp files exist
        self._fill = 0
        self._times: array[float] | None = None  # float64 seconds, 8 bytes a frame
        self._last_time = -math.inf
        self._spill: dict[str, IO[bytes]] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for k in _FIELDS:  # anonymous files: gone when closed, even if the process dies
                self._spill[k] = tempfile.TemporaryFile(dir=self.path.parent)  # noqa: SIM115
        except OSError as e:
            self._discard()
            raise MediaError(f"cannot write motion template ({e.strerror or e})", path=self.path) from e
        self._closed = False
        self._buf = {k: np.empty((chunk, *shape), dtype) for k, (shape, dtype) in _FIELDS.items()}

    def __len__(self) -> int:
        return self.frames

    def append(self, motion: Motion, time: float | None = None) -> None:
        """Add one frame's motion (and its time in seconds, if the driver's frames are timed)."""
        if self._closed:
            raise RuntimeError("TemplateWriter is closed")
        if (time is None) != (self._times is None) and self.frames:
            raise ValueError("give a time for every frame or for none")
        if time is not None:
            t = float(time)
            if not math.isfinite(t) or t <= self._last_time:
                raise ValueError(f"frame times must be finite and increasing, got {time!r} after {self._last_time}")
            if self._times is None:
                self._times = array("d")
            self._times.append(t)
            self._last_time = t
        i = self._fill
        b = self._buf
        b["rotation"][i] = motion.rotation
        b["translation"][i] = motion.translation
        b["scale"][i] = motion.scale
        b["expression"][i] = motion.expression
        b["eye_open"][i] = motion.eye_open
        b["lip_open"][i] = motion.lip_open
        b["gaze"][i] = motion.gaze
        b["valid"][i] = motion.valid
        self._fill += 1
        self.frames += 1
        if self._fill == self.chunk:
            self._flush()

    def _flush(self) -> None:
        try:
            for k, f in self._spill.items():
                f.write(memoryview(self._buf[k][: self._fill]).cast("B"))
        except OSError as e:
            raise MediaError(f"cannot write motion template ({e.strerror or e})", path=self.path) from e
        self._fill = 0

    def close(self) -> Path:
        """Write the template atomically and return its path (MediaError if no frame was appended)."""
        if self._closed:
            return self.path
        try:
            if self.frames == 0:
                raise MediaError("motion template has no frames", path=self.path)
            meta = json.dumps(self.meta)
            self._flush()
            self._write(meta)
        finally:
            self._discard()
        return self.path

    def _write(self, meta: str) -> None:
        from faceanim.media.atomic import atomic_output

        small = {
            "format": np.array(FORMAT),
            "version": np.array(VERSION),
            "fps": np.array([self.fps.numerator, self.fps.denominator], np.int64),
            "meta": np.array(meta),
        }
        if self._times is not None:
            small["time"] = np.frombuffer(self._times, np.float64)
        try:
            with atomic_output(self.path) as tmp, zipfile.ZipFile(
                tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
            ) as zf:
                for name, arr in small.items():
                    with zf.open(f"{name}.npy", "w") as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                for name, (shape, dtype) in _FIELDS.items():
                    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                              "shape": (self.frames, *shape)}
                    spill = self._spill[name]
                    spill.seek(0)
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array_header_1_0(f, header)
                        while block := spill.read(_COPY_BLOCK):
                            f.write(block)
        except OSError as e:
            raise MediaError(f"cannot write motion template ({e.strerror or e})", path=self.path) from e

    def _discard(self) -> None:
        self._closed = True
        for f in self._spill.values():
            f.close()

    def __enter__(self) -> TemplateWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self._discard()


def save_template(path: str | Path, template: MotionTemplate) -> Path:
    """Write a template atomically (temp file, then rename); ``template.times`` is kept if set."""
    times = template.times
    if times is not None and len(times) != len(template.motions):
        raise ValueError(f"template has {len(template.motions)} motions but {len(times)} times")
    with TemplateWriter(path, template.fps, template.meta) as w:
        for i, m in enumerate(template.motions):
            w.append(m, None if times is None else times[i])
    return Path(path)


def _smile(expression: np.ndarray, amount: float) -> np.ndarray:
    """Pull the mouth corners up and out (canonical units), with a smooth falloff around them."""
    can = load_face_model().canonical
    out = expression.copy()
    mouth_w = float(np.linalg.norm(can[MOUTH_CORNERS[0]] - can[MOUTH_CORNERS[1]]))
    for corner, side in ((MOUTH_CORNERS[0], -1.0), (MOUTH_CORNERS[1], 1.0)):
        d = np.linalg.norm(can[:, :2] - can[corner, :2], axis=1)
        w = np.exp(-((d / (0.45 * mouth_w)) ** 2))[:, None]
        out += amount * w * np.array([side * 0.12, -0.10, 0.0]) * mouth_w
    return out


def _slide_silhouette(expression: np.ndarray, yaw: float, amount: float = 0.6) -> np.ndarray:
    """Keep the face-oval landmarks on the visible contour of a turned head, as a tracker reports them.

    Landmarks from a real driver slide around the head's outline as it turns, and relative transfer carries
    that along; synthetic motion has to add it, or the near cheek looks cut off at large yaw.
    """
    oval = load_face_model().group("face_oval")
    out = expression.copy()
    centre = expression[:468].mean(0)
    counter = rotation_from_euler(-amount * yaw, 0.0, 0.0)
    out[oval] = (expression[oval] - centre) @ counter.T + centre
    return out


def _motion(expression: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> Motion:
    return Motion(
        rotation=rotation_from_euler(yaw, pitch, roll),
        translation=np.zeros(3),
        scale=1.0,
        expression=expression,
        eye_open=eye_open_ratios(expression),
        lip_open=float(lip_open_ratio(expression)),
        gaze=gaze_offsets(expression),
    )


def procedural_template(name: str, seconds: float = 3.0, fps: int = 25) -> MotionTemplate:
    """Bundled motions made from the canonical face: ``nod``, ``turn``, ``blink``, ``smile``, ``talk``, ``demo``."""
    base = load_face_model().canonical.copy()
    base = set_lip_open(base, 0.0)
    open_eye = float(eye_open_ratios(base).mean())
    n = round(seconds * fps)
    t = np.arange(n) / fps
    env = np.sin(np.pi * np.clip(t / seconds, 0, 1)) ** 2  # starts and ends neutral
    motions: list[Motion] = []
    for i in range(n):
        e, yaw, pitch, roll = base, 0.0, 0.0, 0.0
        if name in ("nod", "demo"):
            pitch = 12.0 * np.sin(2 * np.pi * t[i] / 1.5) * env[i]
        if name in ("turn", "demo"):
            yaw = 20.0 * np.sin(2 * np.pi * t[i] / seconds)
            roll = 4.0 * np.sin(2 * np.pi * t[i] / seconds)
        if name in ("smile", "demo"):
            e = _smile(e, float(env[i]))
        if name in ("talk", "demo"):
            syll = np.clip(np.sin(2 * np.pi * 3.2 * t[i]) * 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t[i]), 0, None)
            e = set_lip_open(e, 0.45 * syll * (env[i] if name == "demo" else 1.0))
        if name in ("blink", "demo"):
            phase = (t[i] % 1.5) / 0.25  # a blink every 1.5 s lasting 0.25 s
            closed = np.sin(np.pi * phase) if phase < 1.0 else 0.0
            level = open_eye * (1.0 - 0.95 * closed)
            e = set_eye_open(e, level, level)
        if name not in ("nod", "turn", "blink", "smile", "talk", "demo"):
            raise ValueError(f"unknown template {name!r}")
        if yaw:
            e = _slide_silhouette(e, yaw)
        motions.append(_motion(e, yaw, pitch, roll))
    return MotionTemplate(motions=motions, fps=Fraction(fps), meta={"name": name, "generator": "procedural"})


BUNDLED_TEMPLATES: Sequence[str] = ("nod", "turn", "blink", "smile", "talk", "demo")
