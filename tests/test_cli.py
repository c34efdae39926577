"""The ``faceanim`` CLI, run in-process: clean one-line errors for bad input, and the happy paths end to end."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from faceanim.cli import main

PORTRAIT = "liveportrait_s42.jpg"  # 512x512, one face
CLIP = "dreamtalk_M030_front_neutral_level1_001.mp4"  # 256x256, 25 fps, 30 KB, moov atom at the end


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    """Small broken or faceless inputs, made once."""
    from faceanim.media.image import write_image
    from faceanim.media.video import VideoWriter

    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    write_image(d / "gray.png", np.full((128, 128, 3), 128, np.uint8))
    (d / "corrupt.jpg").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "notes.txt").write_text("not a picture\n")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.npz").write_bytes(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    with VideoWriter(d / "gray.mp4", Fraction(25)) as w:
        for i in range(10):
            w.write(np.full((96, 96, 3), 100 + i, np.uint8))
    return {p.name: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def truncated_clip(clip, tmp_path_factory) -> Path:
    data = clip(CLIP).read_bytes()
    p = tmp_path_factory.mktemp("trunc") / "truncated.mp4"
    p.write_bytes(data[: len(data) // 2])
    return p


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--quiet", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, err: str, name: str, outdir: Path) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("faceanim: error: "), err
    assert name in lines[0], err
    assert not outdir.exists() or list(outdir.iterdir()) == [], list(outdir.iterdir())


@pytest.mark.parametrize(
    ("source", "driving", "named", "extra"),
    [
        ("missing.jpg", "template:blink", "missing.jpg", ()),
        ("gray.png", "template:blink", "gray.png", ()),
        ("corrupt.jpg", "template:blink", "corrupt.jpg", ()),
        ("notes.txt", "template:blink", "notes.txt", ()),
        (PORTRAIT, "notes.txt", "notes.txt", ()),
        (PORTRAIT, "missing.mp4", "missing.mp4", ()),
        (PORTRAIT, "empty.mp4", "empty.mp4", ()),
        (PORTRAIT, "truncated.mp4", "truncated.mp4", ()),
        (PORTRAIT, "gray.mp4", "gray.mp4", ()),
        (PORTRAIT, "garbage.npz", "garbage.npz", ()),
        (PORTRAIT, "template:blink", PORTRAIT, ("--face", "5")),
    ],
    ids=["missing-source", "no-face-source", "corrupt-image", "txt-source", "txt-driving", "missing-driving",
         "empty-video", "truncated-video", "no-face-video", "garbage-npz", "face-5"],
)
def test_animate_bad_input(capsys, tmp_path, portrait, bad_inputs, truncated_clip, source, driving, named, extra):
    def resolve(name: str) -> str:
        if name.startswith("template:"):
            return name
        if name == PORTRAIT:
            return str(portrait(name))
        if name == "truncated.mp4":
            return str(truncated_clip)
        return str(bad_inputs.get(name, tmp_path / name))

    outdir = tmp_path / "out"
    outdir.mkdir()
    code, _, err = run(capsys, "animate", "--source", resolve(source), "--driving", resolve(driving),
                       "-o", outdir / "result.mp4", "--max-frames", "8", *extra)
    assert_clean_error(code, err, named, outdir)


def test_extract_motion_bad_input(capsys, tmp_path, bad_inputs):
    outdir = tmp_path / "out"
    code, _, err = run(capsys, "extract-motion", bad_inputs["gray.mp4"], "-o", outdir / "m.npz")
    assert_clean_error(code, err, "gray.mp4", outdir)


@pytest.mark.parametrize("name", ["corrupt.jpg", "notes.txt", "empty.mp4", "missing.png"])
def test_inspect_bad_input(capsys, tmp_path, bad_inputs, name):
    outdir = tmp_path / "out"
    path = bad_inputs.get(name, tmp_path / name)
    code, _, err = run(capsys, "inspect", path, "--out", outdir / ("a" + Path(name).suffix))
    assert_clean_error(code, err, name, outdir)


def test_usage_errors_exit_2(capsys):
    assert main(["animate", "--source", "x.jpg"]) == 2
    assert main(["animate", "-s", "a.jpg", "-d", "b.mp4", "-o", "c.mp4", "--face", "two"]) == 2
    assert main(["animate", "-s", "a.jpg", "-d", "b.mp4", "-o", "c.mp4", "--max-frames", "0"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["inspect", "animate", "extract-motion", "verify", "demo", "templates"])
def test_help_has_examples(capsys, command):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"faceanim {command}" in out


def test_main_help_and_templates(capsys):
    assert main(["--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    code, out, _ = run(capsys, "templates")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} >= {f"template:{n}" for n in ("nod", "blink", "demo")}


def test_inspect_portrait(capsys, tmp_path, portrait):
    code, out, err = run(capsys, "inspect", portrait(PORTRAIT), "--json", "--out", tmp_path / "a.png")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["faces"]) == 1
    face = report["faces"][0]
    assert abs(face["yaw"]) < 45 and 0.1 < face["eye_open"][0] < 0.6
    assert (tmp_path / "a.png").is_file()
    code, out, _ = run(capsys, "inspect", portrait(PORTRAIT))
    assert code == 0 and "1 face" in out and "yaw" in out


def test_inspect_clip(capsys, clip):
    code, out, err = run(capsys, "inspect", clip(CLIP), "--max-frames", "10", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["frames"] == 10
    assert sum(report["status"].values()) == 10
    assert report["fps"] == "25/1"


def test_animate_template_and_verify(capsys, tmp_path, portrait):
    from faceanim.media.video import probe_video

    marked, unmarked = tmp_path / "blink.mp4", tmp_path / "plain.mp4"
    code, out, err = run(capsys, "animate", "--source", portrait(PORTRAIT), "--driving", "template:blink",
                         "-o", marked, "--max-frames", "10")
    assert code == 0, err
    assert out.strip() == f"wrote {marked} (10 frames, 0 without a face)"
    assert probe_video(marked).frame_count == 10
    code, out, err = run(capsys, "verify", marked)
    assert code == 0, err
    assert "provenance mark found" in out

    code, _, err = run(capsys, "animate", "-s", portrait(PORTRAIT), "-d", "template:blink", "-o", unmarked,
                       "--max-frames", "3", "--no-provenance", "--renderer", "identity")
    assert code == 0, err
    code, out, _ = run(capsys, "verify", unmarked)
    assert code == 1
    assert "no faceanim provenance mark found" in out


def test_animate_image_driver_writes_png(capsys, tmp_path, portrait):
    out_png = tmp_path / "smile.png"
    driver = portrait("liveportrait_d9.jpg")
    code, out, err = run(capsys, "animate", "--source", portrait(PORTRAIT), "--driving", driver, "-o", out_png,
                         "--no-pose", "--eyes-open", "0.3", "--gaze", "0.05", "0")
    assert code == 0, err
    assert out.startswith(f"wrote {out_png} (1 frame")
    from faceanim.media.image import read_image

    assert read_image(out_png).shape == (512, 512, 3)
    assert run(capsys, "verify", out_png)[0] == 0


def test_extract_motion_then_animate(capsys, tmp_path, portrait, clip):
    motion = tmp_path / "motion.npz"
    code, out, err = run(capsys, "extract-motion", clip(CLIP), "-o", motion, "--max-frames", "8")
    assert code == 0, err
    assert out.startswith(f"wrote {motion} (8 frames")
    video = tmp_path / "from_motion.mp4"
    code, out, err = run(capsys, "animate", "-s", portrait(PORTRAIT), "-d", motion, "-o", video,
                         "--crop-only", "--mode", "relative", "--expression-scale", "1.2")
    assert code == 0, err
    assert out.startswith(f"wrote {video} (8 frames")


def test_animate_video_driver(capsys, tmp_path, portrait, clip):
    video = tmp_path / "driven.mp4"
    code, out, err = run(capsys, "animate", "-s", portrait(PORTRAIT), "-d", clip(CLIP), "-o", video,
                         "--max-frames", "8", "--no-audio", "--smoothing", "0.5")
    assert code == 0, err
    assert out.strip() == f"wrote {video} (8 frames, 0 without a face)"


def test_output_may_not_overwrite_an_input(capsys, tmp_path, portrait):
    src = tmp_path / "me.jpg"
    src.write_bytes(portrait(PORTRAIT).read_bytes())
    before = src.read_bytes()
    code, _, err = run(capsys, "animate", "-s", src, "-d", src, "-o", src)
    assert code == 2 and "same file as an input" in err and "me.jpg" in err
    assert src.read_bytes() == before


def test_demo_writes_a_marked_video(capsys, tmp_path):
    out = tmp_path / "sub" / "demo.mp4"
    code, stdout, err = run(capsys, "demo", "-o", out, "--max-frames", "3")
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (3 frames")
    assert run(capsys, "verify", out)[0] == 0


def test_interrupt_internal_error_and_verbose(capsys, monkeypatch, tmp_path):
    import faceanim.pipeline.run as run_module
    from faceanim.errors import NoFaceError

    args = ["animate", "-s", "a.jpg", "-d", "template:nod", "-o", str(tmp_path / "o.mp4")]

    def raiser(exc):
        def fake(*a, **k):
            raise exc

        return fake

    monkeypatch.setattr(run_module, "animate_file", raiser(KeyboardInterrupt()))
    assert main(args) == 130
    monkeypatch.setattr(run_module, "animate_file", raiser(RuntimeError("boom\nsecond line")))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error: RuntimeError: boom second line" in err
    monkeypatch.setattr(run_module, "animate_file", raiser(PermissionError(13, "Permission denied", "o.mp4")))
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "faceanim: error: o.mp4: Permission denied"
    monkeypatch.setattr(run_module, "animate_file", raiser(NoFaceError("no face found", path="a.jpg")))
    assert main(["--verbose", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("faceanim: error: a.jpg: no face found")
