"""The app's logic without a browser: controls → configs, upload checks, the cached still preview, render jobs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceanim.app.controls import Controls
from faceanim.app.jobs import prune, render_job
from faceanim.app.preview import PreviewCache, crop_preview, render_preview
from faceanim.app.uploads import UploadLimits, check_upload
from faceanim.errors import Cancelled, MediaError, NoFaceError
from faceanim.media.image import read_image, write_image
from faceanim.media.provenance import read_provenance
from faceanim.media.video import probe_video

PORTRAIT = "sadtalker_happy.png"  # 256x256, one face
CLIP = "liveportrait_d0.mp4"  # 512x512, 25 fps


def test_controls_reach_the_transfer_config() -> None:
    c = Controls(mode="absolute", expression_scale=1.5, left_eye_open=0.1, right_eye_open=0.25, lip_open=0.3,
                 gaze=(0.1, -0.05), smoothing=2.0, renderer="tps", crop_size=512, face=1)
    t = c.transfer()
    assert (t.mode, t.expression_scale, t.left_eye_open, t.right_eye_open, t.lip_open, t.gaze_direction) == \
        ("absolute", 1.5, 0.1, 0.25, 0.3, (0.1, -0.05))
    job = c.job_options(max_frames=7, provenance=False)
    assert job.animator.renderer == "tps" and job.animator.crop.size == 512
    assert job.face_index == 1 and job.max_frames == 7 and not job.provenance and not job.progress
    assert job.session.smoothing == 2.0
    assert Controls(head_offset=(10.0, 0.0, -5.0)).transfer().head_offset == (10.0, 0.0, -5.0)


def test_upload_checks_name_the_file(tmp_path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(MediaError, match=r"notes\.txt: unsupported file type \.txt"):
        check_upload(txt, "image")
    big = tmp_path / "big.png"
    write_image(big, np.zeros((300, 300, 3), np.uint8))
    with pytest.raises(MediaError, match=r"big\.png: file too large"):
        check_upload(big, "image", UploadLimits(max_mb=0.0001))
    with pytest.raises(MediaError, match=r"big\.png: too many pixels \(300x300"):
        check_upload(big, "image", UploadLimits(max_pixels=200 * 200))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(MediaError, match=r"corrupt\.jpg: cannot read image"):
        check_upload(corrupt, "image")
    with pytest.raises(MediaError, match="please upload a portrait"):
        check_upload(None, "image", what="portrait")
    assert check_upload(big, "image") == big


def test_video_upload_duration_limit(clip) -> None:
    with pytest.raises(MediaError, match=r"liveportrait_d0\.mp4: video too long"):
        check_upload(clip(CLIP), "video", UploadLimits(max_seconds=1.0))
    assert check_upload(clip(CLIP), "video").name == CLIP


def test_slider_moves_rerender_one_still_without_preparing_again(portrait, clip) -> None:
    cache = PreviewCache()
    src, drv = str(portrait(PORTRAIT)), str(clip(CLIP))
    base = render_preview(cache, src, drv, Controls(), at=1.0)
    assert cache.prepared == 1
    again = render_preview(cache, src, drv, Controls(), at=1.0)
    assert np.array_equal(base, again)  # same controls, same still
    closed = render_preview(cache, src, drv, Controls(lip_open=0.0, left_eye_open=0.0, right_eye_open=0.0), at=1.0)
    wide = render_preview(cache, src, drv, Controls(lip_open=0.5), at=1.0)
    assert cache.prepared == 1  # the prepared source was reused for every slider value
    assert base.shape == closed.shape == wide.shape
    # The mouth region (lower middle of the face crop) changes with the lip slider.
    h, w = base.shape[:2]
    mouth = (slice(int(0.55 * h), int(0.85 * h)), slice(int(0.3 * w), int(0.7 * w)))
    assert np.abs(wide[mouth].astype(int) - closed[mouth].astype(int)).mean() > 2.0
    crop = crop_preview(cache, src, Controls())
    assert crop.shape == (256, 256, 3)
    render_preview(cache, src, drv, Controls(crop_size=512), at=1.0)
    assert cache.prepared == 2  # the crop size is part of the preparation


def test_preview_with_template_image_and_no_driver(portrait) -> None:
    cache = PreviewCache()
    src = str(portrait(PORTRAIT))
    still = render_preview(cache, src, None, Controls())
    smile = render_preview(cache, src, "template:smile", Controls(), at=1.5)
    expr = render_preview(cache, src, str(portrait("liveportrait_d19.jpg")), Controls())
    assert still.shape == smile.shape == expr.shape
    assert np.abs(smile.astype(int) - still.astype(int)).mean() > 0.2
    assert np.abs(expr.astype(int) - still.astype(int)).mean() > 0.2


def test_faceless_portrait_is_a_clear_error(tmp_path) -> None:
    gray = tmp_path / "wall.png"
    write_image(gray, np.full((200, 200, 3), 128, np.uint8))
    cache = PreviewCache()
    assert cache.faces(gray).count == 0
    with pytest.raises(NoFaceError, match=r"wall\.png: no face"):
        render_preview(cache, str(gray), None, Controls())


def test_render_job_reports_progress_and_marks_the_output(portrait, clip, tmp_path) -> None:
    calls: list[tuple[int, int | None]] = []
    report = render_job(str(portrait(PORTRAIT)), str(clip(CLIP)), Controls(), tmp_path, max_frames=12,
                        on_progress=lambda d, t: calls.append((d, t)))
    assert report.frames == 12 and report.output.is_file()
    assert probe_video(report.output).frame_count == 12
    assert read_provenance(report.output)["faceanim_synthetic"] == "true"
    assert calls and calls[-1][0] == 12


def test_cancelled_render_leaves_nothing(portrait, clip, tmp_path) -> None:
    cancel = threading.Event()

    def tick(done: int, total: int | None) -> None:
        if done >= 3:
            cancel.set()

    with pytest.raises(Cancelled):
        render_job(str(portrait(PORTRAIT)), str(clip(CLIP)), Controls(), tmp_path, max_frames=40, on_progress=tick,
                   cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_group_photo_faces_are_listed_and_selectable(portrait) -> None:
    cache = PreviewCache()
    group = str(portrait("facerec_two_people.jpg"))
    found = cache.faces(group)
    assert found.count == 2
    first, second = crop_preview(cache, group, Controls(face=0)), crop_preview(cache, group, Controls(face=1))
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 10  # two different people's crops
    still = render_preview(cache, group, "template:talk", Controls(face="all"), at=1.0)
    assert still.shape[:2] == read_image(group).shape[:2]
    with pytest.raises(NoFaceError, match="only 2 face"):
        render_preview(cache, group, None, Controls(face=5))


def test_old_results_are_pruned(tmp_path) -> None:
    import os
    import time

    old, new = tmp_path / "faceanim-old.mp4", tmp_path / "faceanim-new.mp4"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert prune(tmp_path) == 1
    assert not old.exists() and new.exists()
