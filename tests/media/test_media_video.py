from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from faceanim.errors import MediaError
from faceanim.media import (
    VideoWriter,
    iter_video,
    probe_video,
    read_audio,
    rotate_image,
    write_video,
)
from faceanim.media.video import as_fps_fraction

NTSC = Fraction(30000, 1001)


def _stream_seconds(s: av.stream.Stream) -> float:
    return float(s.duration * s.time_base)


def test_fps_30000_1001_round_trip(tmp_path: Path, pattern_frame: Callable[..., np.ndarray]) -> None:
    out = write_video(tmp_path / "ntsc.mp4", (pattern_frame(i) for i in range(20)), NTSC)
    info = probe_video(out)
    assert info.fps == NTSC and isinstance(info.fps, Fraction)
    assert info.frame_count == 20
    assert (info.width, info.height, info.rotation, info.has_audio) == (64, 48, 0, False)
    assert info.duration == pytest.approx(20 * 1001 / 30000, abs=1e-6)
    times = [f.time for f in iter_video(out)]
    assert times == pytest.approx([i * 1001 / 30000 for i in range(20)], abs=1e-6)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (29.97, NTSC),
        (23.976, Fraction(24000, 1001)),
        (25.0, Fraction(25)),
        (30, Fraction(30)),
        (22.131, Fraction(22131, 1000)),
        (NTSC, NTSC),
    ],
)
def test_as_fps_fraction(given: float | Fraction, expected: Fraction) -> None:
    assert as_fps_fraction(given) == expected


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), "30"])
def test_as_fps_fraction_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        as_fps_fraction(bad)  # type: ignore[arg-type]


def test_frames_decode_back_with_content_and_colour(
    tmp_path: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    colour = np.array([200, 60, 120], np.uint8)
    frames = [np.broadcast_to(colour, (48, 64, 3)).copy(), pattern_frame(5)]
    out = write_video(tmp_path / "c.mp4", frames, 25)
    decoded = [f.image for f in iter_video(out)]
    assert decoded[0].dtype == np.uint8 and decoded[0].flags.c_contiguous
    # BT.709 tagged on write and honoured on read: a saturated colour survives within codec error.
    assert np.abs(decoded[0].astype(int) - colour).max() <= 4
    assert np.abs(decoded[1].astype(int) - frames[1]).mean() < 6


def test_odd_size_is_padded_by_edge_replication(tmp_path: Path) -> None:
    img = np.zeros((33, 47, 3), np.uint8)
    img[:, -1] = 255  # last column white, last row black except that column
    out = write_video(tmp_path / "odd.mp4", [img] * 3, 25)
    info = probe_video(out)
    assert (info.width, info.height) == (48, 34)
    frame = next(iter_video(out)).image
    assert frame[:, -2:].mean() > 230  # the padded column repeats the white edge
    assert frame[:, :40].mean() < 10


def test_every_max_frames_and_max_side(tmp_path: Path, pattern_frame: Callable[..., np.ndarray]) -> None:
    out = write_video(tmp_path / "s.mp4", (pattern_frame(i, 400, 300) for i in range(10)), 25)
    frames = list(iter_video(out, every=3, max_side=100))
    assert [f.index for f in frames] == [0, 3, 6, 9]
    assert frames[0].image.shape == (75, 100, 3)
    assert [f.index for f in iter_video(out, max_frames=2, every=2)] == [0, 2]
    assert list(iter_video(out, max_frames=0)) == []


def test_variable_frame_rate_times_come_from_timestamps(make_raw_video: Callable[..., Path]) -> None:
    pts = [0, 40, 120, 130, 400, 410]  # ms
    path = make_raw_video("vfr.mp4", pts=pts)
    assert [f.time for f in iter_video(path)] == pytest.approx([p / 1000 for p in pts], abs=1e-3)


@pytest.mark.parametrize(("rotation_ccw", "expected_cw"), [(-90, 90), (90, 270), (180, 180)])
def test_rotation_metadata_is_applied(
    make_raw_video: Callable[..., Path], rotation_ccw: int, expected_cw: int
) -> None:
    path = make_raw_video(f"rot{expected_cw}.mp4", frames=3, w=64, h=32, rotation_ccw=rotation_ccw)
    info = probe_video(path)
    assert info.rotation == expected_cw
    img = next(iter_video(path)).image
    expected_shape = (32, 64, 3) if expected_cw == 180 else (64, 32, 3)
    assert (info.height, info.width, 3) == img.shape == expected_shape
    ys, xs = np.nonzero(img[..., 0] > 128)
    h, w = img.shape[:2]
    # stored marker is top-left; shown clockwise 90 -> top-right, 270 -> bottom-left, 180 -> bottom-right
    corner = {90: (False, True), 270: (True, False), 180: (True, True)}[expected_cw]
    assert (ys.mean() > h / 2, xs.mean() > w / 2) == corner


def test_anamorphic_video_is_shown_with_square_pixels(tmp_path: Path) -> None:
    """A stored 64x60 frame with sample aspect 15:16 is displayed 60x60 (liveportrait_d9.mp4 is like this)."""
    path = tmp_path / "sar.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        st.width, st.height, st.pix_fmt = 64, 60, "yuv420p"
        st.codec_context.sample_aspect_ratio = Fraction(15, 16)
        img = np.zeros((60, 64, 3), np.uint8)
        img[10:40, 10:42] = 255  # 32x30 stored: a square once the pixels are 15/16 as wide as tall
        for i in range(2):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            c.mux(st.encode(f))
        c.mux(st.encode(None))
    info = probe_video(path)
    frames = list(iter_video(path))
    assert (info.width, info.height) == (60, 60) and frames[0].image.shape == (60, 60, 3)
    ys, xs = np.nonzero(frames[0].image[..., 0] > 128)
    assert abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 1
    assert next(iter_video(path, max_side=30)).image.shape == (30, 30, 3)


def test_rotate_image_helper() -> None:
    a = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    assert rotate_image(a, 90)[:, :, 0].tolist() == [[3, 0], [4, 1], [5, 2]]
    assert rotate_image(a, 270)[:, :, 0].tolist() == [[2, 5], [1, 4], [0, 3]]
    assert rotate_image(a, 0) is a


def test_mux_generated_sine_wav(
    tmp_path: Path, make_wav: Callable[..., Path], pattern_frame: Callable[..., np.ndarray]
) -> None:
    wav = make_wav(seconds=3.0, freq=440.0)
    out = write_video(tmp_path / "a.mp4", (pattern_frame(i) for i in range(38)), 25, audio=wav)
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert a.codec_context.name == "aac"
        assert _stream_seconds(a) == pytest.approx(_stream_seconds(v), abs=0.1)
        assert _stream_seconds(v) == pytest.approx(38 / 25, abs=1e-6)
    sound = read_audio(out, 16000)
    spectrum = np.abs(np.fft.rfft(sound))
    assert np.fft.rfftfreq(sound.size, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_mux_real_talking_clip_audio(
    tmp_path: Path, shared_data: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    src = shared_data / "talking" / "pcavs_pose_source_00067.mp4"  # 4.6 s, AAC 16 kHz mono speech
    with VideoWriter(tmp_path / "talk.mp4", NTSC, audio=src) as w:
        for i in range(60):  # ~2.0 s
            w.write(pattern_frame(i))
    assert w.audio_muxed
    with av.open(str(tmp_path / "talk.mp4")) as c:
        assert _stream_seconds(c.streams.audio[0]) == pytest.approx(60 * 1001 / 30000, abs=0.1)
    got, ref = read_audio(tmp_path / "talk.mp4"), read_audio(src)
    n = min(got.size, 24000)
    assert got.size == pytest.approx(60 * 1001 / 30000 * 16000, abs=1600)
    assert np.corrcoef(got[:n], ref[:n])[0, 1] > 0.9  # same speech, in sync, after AAC re-encode


def test_audio_source_without_audio_stream_gives_silent_video(
    tmp_path: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    silent = write_video(tmp_path / "silent.mp4", [pattern_frame(0)] * 3, 25)
    with VideoWriter(tmp_path / "out.mp4", 25, audio=silent) as w:
        w.write(pattern_frame(0))
    assert not w.audio_muxed
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(c.streams.audio) == 0


def test_unreadable_audio_source_raises_early(tmp_path: Path) -> None:
    bad = tmp_path / "speech.wav"
    bad.write_text("not audio at all\n" * 20)
    with pytest.raises(MediaError) as err:
        VideoWriter(tmp_path / "out.mp4", 25, audio=bad)
    assert str(bad) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]


def test_container_metadata_round_trip(tmp_path: Path, pattern_frame: Callable[..., np.ndarray]) -> None:
    meta = {"faceanim_custom_key": "value with spaces", "comment": "hello", "title": "t"}
    for suffix in (".mp4", ".mkv"):
        out = write_video(tmp_path / f"m{suffix}", [pattern_frame(0)] * 2, 25, metadata=meta)
        with av.open(str(out)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
        assert {k: tags.get(k) for k in meta} == meta


def test_exception_inside_writer_leaves_nothing(
    tmp_path: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    with pytest.raises(RuntimeError, match="render failed"), VideoWriter(tmp_path / "x.mp4", 25) as w:
        for i in range(5):
            w.write(pattern_frame(i))
        raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []


def test_zero_frames_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no frames") as err, VideoWriter(tmp_path / "sub" / "x.mp4", 25):
        pass
    assert "x.mp4" in str(err.value)
    assert list((tmp_path / "sub").iterdir()) == []


def test_writer_rejects_bad_frames_and_size_changes(
    tmp_path: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    with pytest.raises(ValueError), VideoWriter(tmp_path / "x.mp4", 25) as w:
        w.write(pattern_frame(0, 64, 48))
        w.write(pattern_frame(0, 32, 48))
    with pytest.raises(ValueError), VideoWriter(tmp_path / "y.mp4", 25) as w:
        w.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(MediaError, match="unsupported output"):
        VideoWriter(tmp_path / "z.avi", 25)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- bad inputs


def test_bad_video_inputs_name_the_file(tmp_path: Path) -> None:
    text = tmp_path / "text.mp4"
    text.write_text("this is a text file, not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for path, words in [(tmp_path / "missing.mp4", "not found"), (text, "cannot open"), (empty, "empty")]:
        for call in (probe_video, lambda p: list(iter_video(p))):
            with pytest.raises(MediaError, match=words) as err:
                call(path)
            assert str(path) in str(err.value)


def test_truncated_real_mp4_first_2kb(tmp_path: Path, shared_data: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((shared_data / "talking" / "vexpress_AOC_gt.mp4").read_bytes()[:2048])
    for call in (probe_video, lambda p: list(iter_video(p))):
        with pytest.raises(MediaError) as err:
            call(cut)
        assert str(cut) in str(err.value)


def test_truncated_mid_file_names_path_and_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    full = write_video(
        tmp_path / "full.mp4", (rng.integers(0, 256, (64, 64, 3), np.uint8) for _ in range(40)), 25
    )
    data = full.read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])  # moov is at the front (faststart), media is cut
    with pytest.raises(MediaError, match="truncated") as err:
        for _ in iter_video(cut):
            pass
    assert str(cut) in str(err.value) and "(frame " in str(err.value)


def test_audio_file_is_not_a_video(make_wav: Callable[..., Path]) -> None:
    wav = make_wav(seconds=0.5)
    with pytest.raises(MediaError, match="no video stream") as err:
        probe_video(wav)
    assert str(wav) in str(err.value)


def test_probe_real_ntsc_clip(shared_data: Path) -> None:
    info = probe_video(shared_data / "talking" / "vexpress_RD_Radio10_0_clip_0.mp4")
    assert info.fps == NTSC
    assert (info.width, info.height, info.has_audio) == (512, 512, True)
    assert info.duration == pytest.approx(2.11, abs=0.05)


# ------------------------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read RSS")
def test_long_video_streams_with_flat_memory(
    tmp_path: Path, pattern_frame: Callable[..., np.ndarray]
) -> None:
    n = 1500
    base = pattern_frame(0, 320, 240)

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            yield np.roll(base, i, axis=1)

    path = tmp_path / "long.mp4"
    with VideoWriter(path, 30, preset="ultrafast", crf=30) as w:
        for f in frames():
            w.write(f)
    count, rss_at_100, peak = 0, 0, 0
    for frame in iter_video(path):
        count += 1
        if count == 100:
            rss_at_100 = _rss_bytes()
        elif count > 100 and count % 50 == 0:
            peak = max(peak, _rss_bytes())
        assert frame.image.shape == (240, 320, 3)
    assert count == n
    # 1500 decoded frames are ~345 MB; holding them would blow far past this bound.
    assert peak - rss_at_100 < 50 * 2**20
