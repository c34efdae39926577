"""``faceanim.pipeline.inspect`` reports and ``faceanim.render.annotate`` drawing helpers."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from faceanim.errors import MediaError
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.pose import HeadPose
from faceanim.pipeline.inspect import frame_ranges, inspect_file, inspect_image, inspect_video
from faceanim.render import annotate

PORTRAIT = "liveportrait_s42.jpg"
CLIP = "dreamtalk_M030_front_neutral_level1_001.mp4"


def test_frame_ranges():
    assert frame_ranges([]) == []
    assert frame_ranges([3]) == ["3"]
    assert frame_ranges([0, 1, 2, 5, 7, 8]) == ["0-2", "5", "7-8"]


def test_annotate_helpers_draw_without_mutating():
    img = np.zeros((200, 200, 3), np.uint8)
    lms = np.random.default_rng(0).uniform(20, 180, (478, 3))
    out = annotate.draw_landmarks(img, lms, (0, 255, 0), 1)
    assert img.max() == 0 and out.shape == img.shape and out.dtype == np.uint8
    assert tuple(out[round(lms[470, 1]), round(lms[470, 0])]) == (255, 255, 0)  # iris highlighted

    pose = HeadPose(rotation_from_euler(0, 0, 0), np.array([100.0, 100.0, 0.0]), 50.0)
    axes = annotate.draw_pose_axes(img, pose, length=1.0)
    assert axes[100, 140, 0] > 200 and axes[100, 140, 1] < 50  # x axis: red, to the right
    assert axes[140, 100, 1] > 200 and axes[140, 100, 0] < 50  # y axis: green, downwards

    mask = np.zeros((200, 200), np.float32)
    mask[:100] = 1.0
    tinted = annotate.draw_mask_overlay(np.full_like(img, 100), mask, (255, 0, 0), 0.5)
    assert tinted[50, 50, 0] > 150 and tuple(tinted[150, 150]) == (100, 100, 100)

    text = annotate.draw_text(np.full_like(img, 200), ["hello", "world"], (5, 5))
    assert text[6, 6].max() < 200  # dark box behind the text
    boxed = annotate.draw_face_box(img, [20, 20, 120, 120], label="#0")
    assert boxed[70, 20].any() and not boxed[70, 70].any()
    banner = annotate.draw_banner(img, "no face")
    assert banner[2, 2, 0] > 150


def test_inspect_image_reports_one_face_and_writes_annotation(tmp_path, portrait):
    out = tmp_path / "annotated.png"
    report = inspect_image(portrait(PORTRAIT), out)
    json.dumps(report)
    assert report["width"] == report["height"] == 512
    assert len(report["faces"]) == 1
    face = report["faces"][0]
    assert face["index"] == 0 and len(face["box"]) == 4
    assert set(face) >= {"yaw", "pitch", "roll", "eye_open", "lip_open", "scale"}
    from faceanim.media.image import read_image
    from faceanim.media.provenance import read_provenance

    assert read_image(out).shape == (512, 512, 3)
    assert read_provenance(out) is None  # annotations are not synthetic faces


def test_inspect_video_streams_and_annotates(tmp_path, clip):
    from faceanim.media.video import probe_video

    out = tmp_path / "tracked.mp4"
    report = inspect_video(clip(CLIP), out, max_frames=10, progress=False)
    json.dumps(report)
    assert report["frames"] == 10 and report["fps"] == "25/1"
    assert report["status"]["missing"] == 0 and report["missing_frames"] == []
    assert report["status"]["detected"] >= 1
    yaw = report["pose"]["yaw"]
    assert yaw["min"] <= yaw["mean"] <= yaw["max"]
    assert report["lip_open"]["min"] <= report["lip_open"]["max"]
    assert probe_video(out).frame_count == 10


def test_inspect_video_without_face_reports_missing_ranges(tmp_path):
    from faceanim.media.video import VideoWriter

    src = tmp_path / "gray.mp4"
    with VideoWriter(src, Fraction(30000, 1001)) as w:
        for _ in range(6):
            w.write(np.full((64, 64, 3), 90, np.uint8))
    report = inspect_file(src, tmp_path / "annotated.mp4", progress=False)
    assert report["fps"] == "30000/1001"
    assert report["status"]["missing"] == 6
    assert report["missing_frames"] == ["0-5"]
    assert report["pose"]["yaw"] is None


def test_inspect_file_rejects_unsupported(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hi")
    with pytest.raises(MediaError, match=r"notes\.txt"):
        inspect_file(p)
    with pytest.raises(MediaError, match=r"nope\.png"):
        inspect_file(tmp_path / "nope.png")
