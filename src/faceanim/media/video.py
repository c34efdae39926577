"""Video probing, streaming decode and H.264/MP4 encoding with PyAV."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import av
import av.container
import numpy as np
from av.stream import Disposition

from faceanim.errors import MediaError
from faceanim.media._common import DECODE_ERRORS, check_input_file, open_input, reason
from faceanim.media.atomic import atomic_output

__all__ = [
    "VideoFrame",
    "VideoInfo",
    "VideoWriter",
    "frames_at",
    "iter_video",
    "probe_video",
    "rotate_image",
    "write_video",
]

#: Output suffixes VideoWriter accepts (H.264 + AAC fit all of them).
OUTPUT_VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".m4v", ".mov", ".mkv"})
_AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000})
_BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file. ``width``/``height`` are display size (square pixels, after rotation);
    ``rotation`` is the clockwise turn (0, 90, 180 or 270) applied to decoded frames for display.

    ``start_time`` is the video stream's first presentation time on the file's timeline in seconds
    (``VideoFrame.time`` counts from it); ``audio_offset`` is the first audio stream's start relative to it
    (negative if the audio starts first; None without audio). VideoWriter keeps that offset when muxing."""

    path: str
    width: int
    height: int
    fps: Fraction
    frame_count: int | None
    duration: float | None
    rotation: int
    has_audio: bool
    start_time: float = 0.0
    audio_offset: float | None = None


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its index in the file (0-based, before ``every`` subsampling), its presentation
    time in seconds from the start of the video stream (exact for variable frame rate: pts*time_base minus
    the stream's start), and an RGB uint8 HxWx3 C-contiguous image."""

    index: int
    time: float
    image: np.ndarray


# ----------------------------------------------------------------------------------------------- reading


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    for s in container.streams.video:
        if Disposition.attached_pic not in s.disposition:  # skip cover art in audio files
            return s
    raise MediaError("has no video stream", path=path)


def _stream_fps(stream: av.VideoStream, path: Path) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    raise MediaError("cannot determine the frame rate", path=path)


def _start_seconds(stream: av.stream.Stream) -> float | None:
    """A stream's first presentation time in seconds on the file's timeline, if the container says."""
    if stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


def _frame_seconds(frame: av.frame.Frame) -> float | None:
    if frame.pts is None or not frame.time_base:
        return None
    return float(frame.pts * frame.time_base)


def _rotation_cw(frame: av.VideoFrame, stream: av.VideoStream) -> int:
    """Clockwise display rotation (0/90/180/270) from the display matrix, else the legacy 'rotate' tag."""
    ccw = getattr(frame, "rotation", 0) or 0  # PyAV >= 14: counter-clockwise degrees from the display matrix
    if ccw:
        cw = -float(ccw)
    else:
        try:
            cw = float(stream.metadata.get("rotate", 0))
        except ValueError:
            cw = 0.0
    return (round(cw / 90) * 90) % 360


def rotate_image(img: np.ndarray, rotation_cw: int) -> np.ndarray:
    """Rotate an HxWxC image clockwise by a multiple of 90 degrees; returns a C-contiguous array."""
    k = (rotation_cw // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=-k)) if k else img


def _square_pixel_size(w: int, h: int, stream: av.VideoStream) -> tuple[int, int]:
    """Stored size -> display size with square pixels (anamorphic video: width scaled by the sample
    aspect ratio, as players show it)."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not sar or sar <= 0 or sar == 1 or not Fraction(1, 4) <= sar <= 4:
        return w, h
    return max(1, round(w * sar)), h


def _scaled_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _frame_to_rgb(frame: av.VideoFrame, stream: av.VideoStream, max_side: int | None) -> np.ndarray:
    tw, th = _scaled_size(*_square_pixel_size(frame.width, frame.height, stream), max_side)
    kwargs: dict[str, Any] = {"format": "rgb24", "width": tw, "height": th}
    if (tw, th) != (frame.width, frame.height):
        kwargs["interpolation"] = "AREA"
    if frame.color_range in (1, 2):  # honour full-range ("JPEG") tags on plain yuv420p
        kwargs["src_color_range"] = frame.color_range
    return rotate_image(np.ascontiguousarray(frame.to_ndarray(**kwargs)), _rotation_cw(frame, stream))


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's size, exact frame rate, frame count, duration, rotation and audio presence.

    Decodes the first frame (to read its rotation and prove the file is decodable).
    Raises MediaError if the path is missing, not a video, corrupt or has no video stream.
    """
    p = check_input_file(path)
    with open_input(p) as container:
        stream = _video_stream(container, p)
        fps = _stream_fps(stream, p)
        try:
            first = next(container.decode(stream), None)
        except DECODE_ERRORS as e:
            raise MediaError(f"cannot decode video ({reason(e)})", path=p, frame=0) from e
        if first is None:
            raise MediaError("no frames could be decoded (empty or corrupt video)", path=p)
        rotation = _rotation_cw(first, stream)
        w, h = _square_pixel_size(first.width, first.height, stream)
        if rotation in (90, 270):
            w, h = h, w
        duration: float | None = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        start = _start_seconds(stream)
        if start is None:
            start = _frame_seconds(first) or 0.0
        audio_offset: float | None = None
        if container.streams.audio:
            a_start = _start_seconds(container.streams.audio[0])
            audio_offset = (a_start - start) if a_start is not None else 0.0
        return VideoInfo(str(p), w, h, fps, stream.frames or None, duration, rotation, bool(container.streams.audio),
                         start, audio_offset)


def iter_video(
    path: str | Path, max_frames: int | None = None, every: int = 1, max_side: int | None = None
) -> Iterator[VideoFrame]:
    """Stream decoded frames as RGB uint8, rotation applied, optionally downscaled (longer side <= max_side).

    Memory stays bounded for any length. ``every=n`` yields every n-th decoded frame (indices keep counting
    all frames); ``max_frames`` caps how many are yielded. Times are pts*time_base minus the stream's start
    (``VideoInfo.start_time``), so variable frame rate keeps its exact timing. Raises MediaError on
    open/decode errors (naming the frame) or if no frame decodes.
    """
    if every < 1:
        raise ValueError("every must be >= 1")
    if max_frames is not None and max_frames < 0:
        raise ValueError("max_frames must be >= 0")
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be >= 1")
    p = check_input_file(path)
    container = open_input(p)
    try:
        stream = _video_stream(container, p)
        stream.thread_type = "AUTO"
        fps = _stream_fps(stream, p)
        start = stream.start_time  # in stream.time_base; frames share it
        if max_frames == 0:
            return
        check_packets = "mp4" in container.format.name and bool(stream.frames)
        index = yielded = packets = 0
        t = -1.0 / fps
        try:
            for packet in container.demux(stream):
                if packet.size or packet.dts is not None:  # not the end-of-stream flush packet
                    packets += 1
                for frame in packet.decode():
                    if frame.pts is not None and frame.time_base is not None:
                        if start is None:  # no container start time: the first decoded frame is time 0
                            start = frame.pts
                        t = float((frame.pts - start) * frame.time_base)
                    else:  # no timestamp: one nominal frame after the previous one
                        t = t + float(1 / fps)
                    if index % every == 0:
                        image = _frame_to_rgb(frame, stream, max_side)
                        yield VideoFrame(index, t, image)
                        yielded += 1
                        if max_frames is not None and yielded >= max_frames:
                            return
                    index += 1
        except DECODE_ERRORS as e:
            raise MediaError(f"decode error ({reason(e)})", path=p, frame=index) from e
        if index == 0:
            raise MediaError("no frames could be decoded (empty or corrupt video)", path=p)
        if check_packets and packets < stream.frames:
            raise MediaError(
                f"file is truncated: only {packets} of {stream.frames} frames present", path=p, frame=index
            )
    finally:
        container.close()


class _Timed(Protocol):
    @property
    def time(self) -> float: ...


_T = TypeVar("_T", bound=_Timed)


def frames_at(frames: Iterable[_T], times: Iterable[float]) -> Iterator[_T]:
    """Pair by time, not by index: for each of ``times`` (seconds, non-decreasing) yield the frame on screen
    then, the last one whose ``time`` is <= t (the first frame before it starts, the last one after the
    stream ends). Streams: holds two frames. Works for VideoFrame and anything with a ``time``, so a 25 fps
    driver paired with a 30 fps source repeats every fifth frame instead of playing 1.2x fast."""
    it = iter(frames)
    current = next(it, None)
    if current is None:
        return
    following = next(it, None)
    for t in times:
        while following is not None and following.time <= t + 1e-6:
            current, following = following, next(it, None)
        yield current


# ----------------------------------------------------------------------------------------------- writing


def as_fps_fraction(fps: Fraction | float) -> Fraction:
    """Exact frame rate: Fractions and ints kept; floats near NTSC rates (29.97, 23.976, 59.94) become
    n*1000/1001; other floats become the nearest fraction with denominator <= 1000."""
    if isinstance(fps, Fraction):
        f = fps
    elif isinstance(fps, numbers.Integral) and not isinstance(fps, bool):
        f = Fraction(int(fps))
    elif isinstance(fps, numbers.Real) and not isinstance(fps, bool) and math.isfinite(float(fps)):
        x = float(fps)
        n = round(x * 1.001)
        if x == round(x):
            f = Fraction(round(x))
        elif n > 0 and abs(x - n * 1000 / 1001) < 5e-4:
            f = Fraction(n * 1000, 1001)
        else:
            f = Fraction(x).limit_denominator(1000)
    else:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if not 0 < f <= 1000:
        raise ValueError(f"fps must be in (0, 1000], got {fps!r}")
    return f


#: Audio whose timestamps stray further than this from the samples so far is re-aligned (gap or overlap).
_AUDIO_SLACK = 0.010


class _AudioMux:
    """Streams the first audio track of a file into an AAC output stream, on the output's timeline.

    Output time 0 is source time ``origin`` seconds after the source's video start (or, for a file without
    video, after its audio start). The audio is placed by its timestamps: audio starting later is preceded
    by silence, audio starting earlier is trimmed, gaps are filled with silence and overlaps dropped.
    """

    def __init__(self, src: Path, out: av.container.OutputContainer, origin: float = 0.0) -> None:
        self.src = src
        self.inp = open_input(src)
        self.ist = self.inp.streams.audio[0]
        video = [v for v in self.inp.streams.video if Disposition.attached_pic not in v.disposition]
        self.zero = (_start_seconds(video[0]) or 0.0) + origin if video else None  # None: audio's own start
        self.origin = origin
        rate = self.ist.rate or 48000
        self.rate = rate if rate in _AAC_RATES else 48000
        self.layout = "mono" if (self.ist.channels or 2) == 1 else "stereo"
        self.channels = 1 if self.layout == "mono" else 2
        self.out = out
        self.ost = out.add_stream("aac", rate=self.rate, layout=self.layout)
        self.ost.bit_rate = 96000 if self.layout == "mono" else 160000
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self.chunks = self._placed()
        self.pending: np.ndarray | None = None
        self.written = 0

    def _decoded(self) -> Iterator[tuple[float | None, float, list[np.ndarray]]]:
        """Per decoded frame: its start in output seconds (None if untimed), its length in output samples,
        and the resampled chunks it released."""
        try:
            for packet in self.inp.demux(self.ist):
                for frame in packet.decode():
                    t = _frame_seconds(frame)
                    if t is not None:
                        if self.zero is None:
                            self.zero = t + self.origin
                        t -= self.zero
                    n = frame.samples * self.rate / (frame.sample_rate or self.rate)
                    yield t, n, [r.to_ndarray() for r in self.resampler.resample(frame)]
            yield None, 0.0, [r.to_ndarray() for r in self.resampler.resample(None)]
        except DECODE_ERRORS as e:
            raise MediaError(f"cannot decode audio ({reason(e)})", path=self.src) from e

    def _placed(self) -> Iterator[np.ndarray]:
        """Contiguous output samples from output time 0: silence before the audio and in its gaps, samples
        before time 0 or overlapping earlier ones dropped."""
        expected: float | None = None  # output sample where the next decoded frame starts if contiguous
        cursor = emitted = 0  # output position of the next resampled sample / of the next yielded one
        slack = _AUDIO_SLACK * self.rate
        for t, n, chunks in self._decoded():
            if t is not None and (expected is None or abs(t * self.rate - expected) > slack):
                cursor += round(t * self.rate - (expected or 0.0))
                expected = t * self.rate
            expected = (expected or 0.0) + n
            for chunk in chunks:
                while cursor > emitted:  # silence, in blocks of at most a second
                    k = min(self.rate, cursor - emitted)
                    yield np.zeros((self.channels, k), np.float32)
                    emitted += k
                drop = emitted - cursor
                if drop < chunk.shape[1]:
                    yield chunk[:, drop:]
                    emitted += chunk.shape[1] - drop
                cursor += chunk.shape[1]

    def feed_until(self, seconds: float) -> None:
        """Encode source audio up to ``seconds`` of output (exactly; a split frame's rest is kept)."""
        limit = round(seconds * self.rate)
        while self.written < limit:
            chunk = self.pending if self.pending is not None else next(self.chunks, None)
            self.pending = None
            if chunk is None:
                return  # source exhausted: audio simply ends early
            take = min(chunk.shape[1], limit - self.written)
            if take < chunk.shape[1]:
                self.pending = chunk[:, take:]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk[:, :take], np.float32), format="fltp", layout=self.layout
            )
            frame.sample_rate = self.rate
            frame.time_base = Fraction(1, self.rate)
            frame.pts = self.written
            self.out.mux(self.ost.encode(frame))
            self.written += take

    def finish(self, seconds: float) -> None:
        self.feed_until(seconds)
        self.out.mux(self.ost.encode(None))

    def close(self) -> None:
        self.inp.close()


def _time_base(fps: Fraction) -> Fraction:
    """A fine output time base in which one nominal frame interval is a whole number of ticks: 1/90000
    (the MPEG clock) refined to a multiple of fps's numerator, so 25, 30, 29.97 and 23.976 are all exact."""
    n = fps.numerator
    den = math.lcm(90000, n)
    if den > 2**24:  # an unusual rate: its own numerator, refined to at least 1/10000 s
        den = n * max(1, math.ceil(10000 / n))
    return Fraction(1, den)


def _audio_source(audio: str | Path | None) -> Path | None:
    """Validate an audio source up front: MediaError if unreadable; None if it has no audio stream."""
    if audio is None:
        return None
    src = check_input_file(audio)
    with open_input(src) as c:
        return src if c.streams.audio else None


class VideoWriter:
    """Encode RGB uint8 frames to H.264 (yuv420p, BT.709) in MP4/MOV/MKV, atomically.

    Use as a context manager and call ``write(rgb)`` or ``write(rgb, time)`` per frame. Without ``time``
    frames are one nominal interval (1/fps) apart; with it (seconds on the driver's timeline, e.g.
    ``VideoFrame.time``) each frame is shown at that time, so variable-frame-rate drivers keep their timing.
    Output time 0 is the first frame's time. The stream's nominal rate is ``fps``, kept exact (29.97 ->
    30000/1001). Odd widths/heights are padded to even by replicating the last column/row (not cropped, so
    no content is lost). ``audio`` (a video with an audio track, or any audio file) is re-encoded to AAC,
    placed by its timestamps on the same timeline (for a video, its start relative to that video's start is
    kept: audio starting 0.3 s after the picture still does; audio before output time 0 is cut) and trimmed
    to the video's duration; a file without an audio stream gives a silent video (``audio_muxed`` is False),
    an unreadable file raises MediaError here. ``metadata`` goes into the container tags (custom keys kept
    via ``movflags=use_metadata_tags``). The file appears under ``path`` only after a successful close; an
    exception in the ``with`` block or zero frames leaves nothing behind (zero frames raise MediaError).
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float,
        audio: str | Path | None = None,
        metadata: dict[str, str] | None = None,
        crf: int = 18,
        preset: str = "fast",
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
            allowed = ", ".join(sorted(OUTPUT_VIDEO_SUFFIXES))
            raise MediaError(f"unsupported output video type (use one of {allowed})", path=self.path)
        if not 0 <= crf <= 51:
            raise ValueError("crf must be in [0, 51]")
        self.fps = as_fps_fraction(fps)
        self.crf = crf
        self.preset = preset
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._audio_src = _audio_source(audio)
        self.audio_muxed = self._audio_src is not None
        self.frame_count = 0
        self.duration = 0.0  # seconds written: the last frame's output time plus one nominal interval
        self._tb = _time_base(self.fps)
        self._step = round(1 / (self.fps * self._tb))  # ticks per nominal frame interval
        self._origin: float | None = None  # driver time of output time 0 (the first frame's)
        self._last_pts = -1
        self._size: tuple[int, int] | None = None  # (h, w) of input frames
        self._container: av.container.OutputContainer | None = None
        self._vstream: av.VideoStream | None = None
        self._audio: _AudioMux | None = None
        self._closed = False
        self._atomic = atomic_output(self.path)
        self._tmp = self._atomic.__enter__()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(exc)

    def __del__(self) -> None:  # never leave a temp file behind if the writer was not closed
        with contextlib.suppress(Exception):
            if not self._closed:
                self._finish(RuntimeError("VideoWriter was not closed"))

    def _open(self, h: int, w: int) -> None:
        opts = {"movflags": "use_metadata_tags+faststart"} if self.path.suffix.lower() != ".mkv" else {}
        try:
            c = av.open(str(self._tmp), mode="w", options=opts)
        except DECODE_ERRORS as e:
            raise MediaError(f"cannot create video file ({reason(e)})", path=self.path) from e
        self._container = c
        for k, v in self.metadata.items():
            c.metadata[k] = v
        vs = c.add_stream("libx264", rate=self.fps, options={"crf": str(self.crf), "preset": self.preset})
        vs.width, vs.height = w + (w % 2), h + (h % 2)
        vs.pix_fmt = "yuv420p"
        vs.codec_context.time_base = self._tb
        cc = vs.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
        cc.color_range = _LIMITED_RANGE
        self._vstream = vs
        if self._audio_src is not None:
            self._audio = _AudioMux(self._audio_src, c, self._origin or 0.0)

    def _pts(self, time: float | None) -> int:
        """Output pts for a frame at driver ``time`` (None: one interval after the last): strictly increasing."""
        if time is None:
            if self._origin is None:
                self._origin = 0.0
            return self._last_pts + self._step if self._last_pts >= 0 else 0
        t = float(time)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {time!r}")
        if self._origin is None:
            self._origin = t
        return max(self._last_pts + 1, round((t - self._origin) / self._tb))

    def write(self, rgb: np.ndarray, time: float | None = None) -> None:
        """Append one RGB uint8 HxWx3 frame (all frames must have the first frame's size), shown at ``time``
        seconds on the driver's timeline if given (kept strictly increasing), else one 1/fps after the last."""
        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"frame must be RGB uint8 HxWx3, got {arr.dtype} {arr.shape}")
        h, w = arr.shape[:2]
        pts = self._pts(time)
        if self._size is None:
            if h < 2 or w < 2:
                raise ValueError(f"frame too small: {w}x{h}")
            self._size = (h, w)
            self._open(h, w)
        elif (h, w) != self._size:
            raise ValueError(f"frame {self.frame_count} is {w}x{h}, expected {self._size[1]}x{self._size[0]}")
        if h % 2 or w % 2:
            arr = np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        assert self._container is not None and self._vstream is not None
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.pts = pts
        frame.time_base = self._tb
        try:
            self._container.mux(self._vstream.encode(frame))
            self.frame_count += 1
            self._last_pts = pts
            self.duration = float((pts + self._step) * self._tb)
            if self._audio is not None:
                self._audio.feed_until(float(pts * self._tb))
        except DECODE_ERRORS as e:
            raise MediaError(
                f"cannot encode video ({reason(e)})", path=self.path, frame=self.frame_count
            ) from e

    def close(self) -> None:
        """Flush, mux audio, finalize and move the file into place."""
        self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if exc is None:
                if self.frame_count == 0 or self._container is None:
                    raise MediaError("no frames were written", path=self.path)
                assert self._vstream is not None
                try:
                    self._container.mux(self._vstream.encode(None))
                    if self._audio is not None:
                        self._audio.finish(self.duration)
                    self._container.close()
                except DECODE_ERRORS as e:
                    raise MediaError(f"cannot finish video ({reason(e)})", path=self.path) from e
        except BaseException as e:
            self._release()
            self._atomic.__exit__(type(e), e, e.__traceback__)
            raise
        if exc is not None:
            self._release()
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
        else:
            if self._audio is not None:
                self._audio.close()
            self._atomic.__exit__(None, None, None)

    def _release(self) -> None:
        if self._audio is not None:
            with contextlib.suppress(Exception):
                self._audio.close()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: Fraction | float,
    audio: str | Path | None = None,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
) -> Path:
    """Write RGB uint8 frames to an H.264 MP4 (see VideoWriter) and return the final path."""
    with VideoWriter(path, fps, audio=audio, metadata=metadata, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
