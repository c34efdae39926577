"""Time and audio sync through iter_video -> VideoWriter.write(frame, time): VFR drivers and audio offsets."""

from __future__ import annotations

import itertools
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from faceanim.media import VideoWriter, iter_video, probe_video
from faceanim.media.video import frames_at

NTSC = Fraction(30000, 1001)
RATE = 48000
SIZE = 64


def _frame(bright: bool) -> av.VideoFrame:
    img = np.full((SIZE, SIZE, 3), 230 if bright else 20, np.uint8)
    return av.VideoFrame.from_ndarray(img, format="rgb24")


def _beeps(seconds: float, at: list[float], start: float = 0.0) -> np.ndarray:
    """Mono float32 audio covering [start, start + seconds): silence with a 30 ms 1 kHz beep at each time."""
    n = round(seconds * RATE)
    x = np.zeros(n, np.float32)
    burst = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(round(0.03 * RATE)) / RATE)).astype(np.float32)
    for t in at:
        i = round((t - start) * RATE)
        if 0 <= i < n:
            x[i : i + burst.size] = burst[: n - i]
    return x


def _make_clip(
    path: Path,
    frame_times: list[float],
    bright: set[int],
    audio: np.ndarray,
    audio_start: float,
    codec: str,
    video_tb: Fraction,
) -> Path:
    """A tiny clip: 64x64 frames at ``frame_times`` (bright at the given indices), mono audio from
    ``audio_start`` seconds, both on the container's timeline."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=NTSC, options={"preset": "ultrafast"})
        vs.width = vs.height = SIZE
        vs.pix_fmt = "yuv420p"
        vs.codec_context.time_base = video_tb
        ast = c.add_stream(codec, rate=RATE, layout="mono")
        for i, t in enumerate(frame_times):
            f = _frame(i in bright)
            f.pts, f.time_base = round(t / video_tb), video_tb
            c.mux(vs.encode(f))
        c.mux(vs.encode(None))
        fmt = "fltp" if codec == "aac" else "s16"
        block = 1024
        for k in range(0, audio.size, block):
            chunk = audio[None, k : k + block]
            data = chunk if fmt == "fltp" else np.round(chunk * 32767).astype(np.int16)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="mono")
            af.sample_rate, af.time_base = RATE, Fraction(1, RATE)
            af.pts = round(audio_start * RATE) + k
            c.mux(ast.encode(af))
        c.mux(ast.encode(None))
    return path


def _decoded_audio(path: Path) -> np.ndarray:
    """The file's first audio track as mono float32 at RATE, each decoded frame placed by its timestamp."""
    pieces: list[tuple[int, np.ndarray]] = []
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in c.decode(c.streams.audio[0]):
            at = round(float(frame.pts * frame.time_base) * RATE)
            for r in resampler.resample(frame):
                pieces.append((at, r.to_ndarray().reshape(-1)))
                at += r.samples
    out = np.zeros(max(a + p.size for a, p in pieces), np.float32)
    for a, p in pieces:
        out[max(a, 0) : a + p.size] = p[max(0, -a) :]
    return out


def _onsets(x: np.ndarray, threshold: float = 0.1) -> list[float]:
    """Times (s) where the audio gets loud after at least 0.2 s of quiet."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if loud.size == 0:
        return []
    starts = loud[np.concatenate([[True], np.diff(loud) > 0.2 * RATE])]
    return [float(i / RATE) for i in starts]


def _flashes(path: Path) -> list[float]:
    return [f.time for f in iter_video(path) if f.image.mean() > 128]


def _remux(src: Path, out: Path, audio: Path | None = None, timed: bool = True) -> Path:
    with VideoWriter(out, probe_video(src).fps, audio=audio or src, preset="ultrafast") as w:
        for f in iter_video(src):
            w.write(f.image, f.time if timed else None)
    assert w.audio_muxed
    return out


def _vfr_times(seconds: float = 20.0) -> list[float]:
    """Nominal 29.97 fps with +-4 ms jitter, single and burst drops, and near-duplicate frames."""
    rng = np.random.default_rng(7)
    step = 1001 / 30000
    times: list[float] = []
    for i in range(round(seconds / step)):
        if i % 11 == 5 or 200 <= i < 230:  # dropped frames (every 11th, and a 1 s stall)
            continue
        t = i * step + (rng.uniform(-0.004, 0.004) if i else 0.0)
        times.append(t)
        if i % 97 == 50:  # a duplicated frame 5 ms later
            times.append(t + 0.005)
    return times


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    times = _vfr_times()
    bright = {i for i, t in enumerate(times) if i and (i % 45 == 0 or i == len(times) - 8)}
    flash_times = [times[i] for i in sorted(bright)]
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    _make_clip(path, times, bright, _beeps(20.5, flash_times), 0.0, "aac", Fraction(1, 90000))
    return path, flash_times


def _assert_synced(flashes: list[float], onsets: list[float], tol: float = float(1 / NTSC)) -> None:
    assert len(flashes) >= 2 and len(onsets) == len(flashes), (flashes, onsets)
    gaps = [abs(a - v) for a, v in zip(onsets, flashes, strict=True)]
    assert max(gaps) < tol, list(zip(flashes, onsets, strict=True))


def test_vfr_clip_keeps_its_timing_and_audio_sync_over_20s(
    vfr_clip: tuple[Path, list[float]], tmp_path: Path
) -> None:
    clip, flash_times = vfr_clip
    out = _remux(clip, tmp_path / "out.mp4")
    # the input itself is in sync, its first flash is early and its last one near 20 s
    _assert_synced(_flashes(clip), _onsets(_decoded_audio(clip)))
    assert flash_times[0] < 2.0 and flash_times[-1] > 19.5
    flashes = _flashes(out)
    assert flashes == pytest.approx(flash_times, abs=1e-4)  # frames shown at the driver's own times
    _assert_synced(flashes, _onsets(_decoded_audio(out)))
    fps_in = probe_video(clip).fps  # the average rate: about 9 % of the frames are dropped
    assert abs(fps_in - NTSC) < 0.15 * NTSC
    info = probe_video(out)
    assert info.duration == pytest.approx(_vfr_times()[-1] + float(1 / fps_in), abs=1e-3)
    assert info.fps == pytest.approx(fps_in, rel=1e-3)


def test_vfr_clip_timed_by_count_would_drift(vfr_clip: tuple[Path, list[float]], tmp_path: Path) -> None:
    """The test above can fail: frames timed by their count at the average rate drift around the stall."""
    clip, _ = vfr_clip
    out = _remux(clip, tmp_path / "count.mp4", timed=False)
    flashes, onsets = _flashes(out), _onsets(_decoded_audio(out))
    assert max(abs(a - v) for a, v in zip(onsets, flashes, strict=True)) > 0.3


def _cfr_clip(path: Path, video_start: float, audio_start: float, audio_seconds: float) -> Path:
    """3 s of 25 fps video starting at ``video_start`` with flashes at +1.0 and +2.4 s, PCM audio from
    ``audio_start`` with beeps at the same moments (mkv keeps both starts as given)."""
    times = [video_start + i / 25 for i in range(75)]
    audio = _beeps(audio_seconds, [video_start + 1.0, video_start + 2.4], start=audio_start)
    return _make_clip(path, times, {25, 60}, audio, audio_start, "pcm_s16le", Fraction(1, 1000))


@pytest.mark.parametrize(
    ("video_start", "audio_start"),
    [(0.0, 0.3), (0.5, 0.0)],
    ids=["audio-starts-0.3s-late", "audio-starts-0.5s-early"],
)
def test_audio_start_offset_is_kept(tmp_path: Path, video_start: float, audio_start: float) -> None:
    clip = _cfr_clip(tmp_path / "in.mkv", video_start, audio_start, audio_seconds=3.0)
    info = probe_video(clip)
    assert info.start_time == pytest.approx(video_start, abs=1e-3)
    assert info.audio_offset == pytest.approx(audio_start - video_start, abs=1e-3)
    assert next(iter_video(clip)).time == 0.0
    out = _remux(clip, tmp_path / "out.mp4")
    sound = _decoded_audio(out)
    _assert_synced(_flashes(out), _onsets(sound), tol=0.5 / 25)
    late = max(0.0, audio_start - video_start)
    if late:  # silence until the audio starts, as in the input
        assert np.abs(sound[: round((late - 0.05) * RATE)]).max() < 0.01
    with av.open(str(out)) as c:  # and still trimmed to the picture
        a = c.streams.audio[0]
        assert float(a.duration * a.time_base) <= 3.0 + 0.03


def test_audio_from_another_file_starts_with_the_video(tmp_path: Path) -> None:
    clip = _cfr_clip(tmp_path / "in.mkv", 0.0, 0.0, audio_seconds=3.0)
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:  # a beep 1.0 s into a plain WAV lines up with the flash at 1.0 s
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(_beeps(3.0, [1.0, 2.4]) * 32767).astype("<i2").tobytes())
    out = _remux(clip, tmp_path / "out.mp4", audio=wav)
    _assert_synced(_flashes(out), _onsets(_decoded_audio(out)), tol=0.5 / 25)


def test_times_are_kept_strictly_increasing_and_untimed_frames_follow(tmp_path: Path) -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    with VideoWriter(tmp_path / "t.mp4", 25, preset="ultrafast") as w:
        for t in (5.0, 5.1, 5.1, 5.05, None, 5.3):  # starts at 5 s on the driver's timeline
            w.write(img, t)
    times = [f.time for f in iter_video(tmp_path / "t.mp4")]
    assert times[0] == 0.0 and times[1] == pytest.approx(0.1, abs=1e-4)
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[4] == pytest.approx(times[3] + 0.04, abs=1e-4)
    assert times[5] == pytest.approx(0.3, abs=1e-4)
    assert w.duration == pytest.approx(0.34, abs=1e-4)
    with pytest.raises(ValueError, match="finite"), VideoWriter(tmp_path / "n.mp4", 25) as w:
        w.write(img, float("nan"))
    assert not (tmp_path / "n.mp4").exists()


def test_frames_at_pairs_a_25fps_driver_with_30fps_output_by_time(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "d25.mp4", 25, preset="ultrafast") as w:
        for i in range(50):  # 2 s, the frame index drawn as its brightness
            w.write(np.full((16, 16, 3), 4 * i, np.uint8))
    targets = [i / 30 for i in range(66)]  # 2.2 s at 30 fps
    paired = list(frames_at(iter_video(tmp_path / "d25.mp4"), targets))
    assert len(paired) == 66
    assert [f.index for f in paired] == [min(49, int(t * 25 + 1e-9)) for t in targets]
    assert paired[59].index == 49 and paired[30].index == 25  # real time: 1 s of output shows 1 s of driver
    assert [round(f.image.mean() / 4) for f in paired[:8]] == [0, 0, 1, 2, 3, 4, 5, 5]
    assert list(frames_at(iter([]), targets)) == []
