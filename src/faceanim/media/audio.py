"""Audio decoding to mono float32 at a fixed sample rate, from any container/codec PyAV reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import numpy as np

from faceanim.errors import MediaError
from faceanim.media._common import DECODE_ERRORS, check_input_file, open_input, reason

__all__ = ["audio_duration", "iter_audio", "read_audio"]


def _audio_stream(container: av.container.InputContainer, path: Path) -> av.AudioStream:
    if not container.streams.audio:
        raise MediaError("has no audio stream", path=path)
    return container.streams.audio[0]


def _iter_blocks(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Yield resampled mono float32 blocks (decoder-sized) from the first audio stream."""
    if sample_rate < 1:
        raise ValueError("sample_rate must be >= 1")
    p = check_input_file(path)
    with open_input(p) as container:
        stream = _audio_stream(container, p)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        total = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        block = out.to_ndarray().reshape(-1)
                        total += block.size
                        yield block
            for out in resampler.resample(None):
                block = out.to_ndarray().reshape(-1)
                total += block.size
                yield block
        except DECODE_ERRORS as e:
            raise MediaError(f"cannot decode audio ({reason(e)})", path=p) from e
        if total == 0:
            raise MediaError("no audio samples could be decoded (empty or corrupt audio)", path=p)


def _finish(x: np.ndarray) -> np.ndarray:
    # FFmpeg's stereo->mono downmix is 0.707*(L+R), which can exceed 1 on loud correlated stereo: clip.
    x = np.nan_to_num(x.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(x, -1.0, 1.0, out=x)


def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 in [-1, 1] at ``sample_rate`` Hz.

    Works for audio files (wav, mp3, m4a, flac, ogg, ...) and the audio track of videos. Raises MediaError
    if the path is missing, unreadable/corrupt, or has no audio stream.
    """
    blocks = list(_iter_blocks(path, sample_rate))
    return _finish(np.concatenate(blocks))


def iter_audio(
    path: str | Path, sample_rate: int = 16000, chunk_seconds: float = 1.0
) -> Iterator[np.ndarray]:
    """Stream mono float32 chunks of ``round(chunk_seconds * sample_rate)`` samples (last may be shorter).

    Memory stays bounded; concatenating the chunks equals ``read_audio(path, sample_rate)``.
    """
    n = round(chunk_seconds * sample_rate)
    if n < 1:
        raise ValueError("chunk_seconds * sample_rate must be >= 1 sample")
    buf: list[np.ndarray] = []
    have = 0
    for block in _iter_blocks(path, sample_rate):
        buf.append(block)
        have += block.size
        if have >= n:
            joined = np.concatenate(buf)
            cut = (joined.size // n) * n
            for i in range(0, cut, n):
                yield _finish(joined[i : i + n])
            rest = joined[cut:]
            buf, have = ([rest] if rest.size else []), rest.size
    if have:
        yield _finish(np.concatenate(buf))


def audio_duration(path: str | Path) -> float:
    """Duration in seconds of the first audio stream, from container metadata (decodes only if absent)."""
    p = check_input_file(path)
    with open_input(p) as container:
        stream = _audio_stream(container, p)
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return container.duration / av.time_base
        rate = stream.rate or 16000
    return sum(b.size for b in _iter_blocks(p, rate)) / rate
