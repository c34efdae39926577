"""End-to-end jobs on real inputs: video-, image-, template-driven, multi-face and video-to-video."""

import numpy as np
import pytest

from faceanim.errors import MediaError, NoFaceError
from faceanim.media.image import read_image
from faceanim.media.provenance import read_provenance
from faceanim.media.video import iter_video, probe_video
from faceanim.motion.templates import load_template, procedural_template, save_template
from faceanim.pipeline.animator import Animator, AnimatorConfig
from faceanim.pipeline.run import JobOptions, animate_file, extract_motion

QUICK = JobOptions(max_frames=8, progress=False)


def test_video_driven_output_has_the_driver_fps_audio_and_provenance(portrait, clip, tmp_path):
    out = tmp_path / "out.mp4"
    drv = clip("vexpress_AOC_gt.mp4")  # 29.97 fps with speech
    rep = animate_file(str(portrait("liveportrait_s42.jpg")), str(drv), str(out), QUICK)
    info = probe_video(out)
    assert rep.frames == 8 and info.frame_count == 8
    assert info.fps == probe_video(drv).fps  # exact rational rate, not rounded to 30
    assert info.has_audio
    assert read_provenance(out)["faceanim_synthetic"] == "true"


def test_template_round_trip_and_reuse(clip, portrait, tmp_path):
    npz = tmp_path / "m.npz"
    rep = extract_motion(str(clip("liveportrait_d0.mp4")), str(npz), QUICK)
    tpl = load_template(npz)
    assert len(tpl) == rep.frames == 8
    again = tmp_path / "again.npz"
    save_template(again, tpl)
    tpl2 = load_template(again)
    assert np.allclose(tpl2.motions[3].expression, tpl.motions[3].expression, atol=1e-5)
    assert tpl2.fps == tpl.fps
    out = tmp_path / "from_npz.mp4"
    animate_file(str(portrait("liveportrait_s42.jpg")), str(npz), str(out), QUICK)
    assert probe_video(out).frame_count == 8


def test_template_loader_refuses_pickles_and_foreign_npz(tmp_path):
    bad = tmp_path / "obj.npz"
    np.savez(bad, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(MediaError):
        load_template(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(MediaError, match=r"other\.npz"):
        load_template(other)


def test_image_driven_gives_one_image_with_the_driver_expression(portrait, tmp_path):
    out = tmp_path / "expr.png"
    animate_file(str(portrait("liveportrait_s42.jpg")), str(portrait("liveportrait_d19.jpg")), str(out), QUICK)
    img = read_image(out)
    src = read_image(portrait("liveportrait_s42.jpg"))
    assert img.shape == src.shape
    assert read_provenance(out) is not None
    from faceanim.face.analyze import describe_face
    from faceanim.face.detect import FaceLandmarker

    with FaceLandmarker() as lm:
        before = describe_face(lm.detect(src)[0].landmarks).lip_open
        after = describe_face(lm.detect(img)[0].landmarks).lip_open
    assert after > before + 0.15  # the driver's mouth is wide open


def test_every_face_of_a_group_photo_is_animated(portrait):
    img = read_image(portrait("facerec_two_people.jpg"))
    anim = Animator.prepare(img, AnimatorConfig(), face_index="all")
    assert len(anim.faces) == 2
    tpl = procedural_template("talk", seconds=1.0)
    out = anim.animate(tpl.motions[8], tpl.motions[0]).image
    for face in anim.faces:
        x0, y0, x1, y1 = face.source.box.astype(int)
        assert np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1].astype(int)).mean() > 0.5


def test_face_index_out_of_range_is_a_clear_error(portrait):
    with pytest.raises(NoFaceError, match="face_index 3"):
        Animator.prepare(read_image(portrait("liveportrait_s42.jpg")), face_index=3)


def test_video_to_video_keeps_the_source_motion_and_length(clip, tmp_path):
    out = tmp_path / "v2v.mp4"
    src = clip("liveportrait_d10.mp4")
    rep = animate_file(str(src), str(clip("liveportrait_d0.mp4")), str(out), JobOptions(max_frames=6, progress=False))
    assert rep.frames == 6
    frames = [f.image for f in iter_video(out)]
    orig = [f.image for f in iter_video(src, max_frames=6)]
    assert len(frames) == 6
    # the background is the source video's, frame by frame
    assert np.abs(frames[5][:20].astype(int) - orig[5][:20].astype(int)).mean() < 4


def test_animate_frame_follows_a_live_driver(portrait, clip):
    src = read_image(portrait("liveportrait_s42.jpg"))
    with Animator.prepare(src) as anim:
        frames = iter_video(clip("liveportrait_d3.mp4"), max_frames=6)
        outs = [anim.animate_frame(f.image, f.time).image for f in frames]
    assert all(o.shape == src.shape for o in outs)
    assert np.abs(outs[0].astype(int) - src.astype(int)).mean() < 1.5  # first frame = reference = the source
    assert np.abs(outs[-1].astype(int) - src.astype(int)).mean() > 1.5  # later frames follow the driver


def test_template_with_inconsistent_arrays_is_a_clear_error(clip, tmp_path):
    npz = tmp_path / "m.npz"
    extract_motion(str(clip("liveportrait_d0.mp4")), str(npz), QUICK)
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["expression"] = arrays["expression"][:3]  # fewer frames than the other arrays
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(MediaError, match="expression"):
        load_template(bad)


def test_extract_motion_streams_and_keeps_the_driver_frame_times(clip, tmp_path):
    from faceanim.motion.templates import TemplateReader

    drv = clip("vexpress_AOC_gt.mp4")  # 29.97 fps
    npz = tmp_path / "m.npz"
    extract_motion(str(drv), str(npz), QUICK)
    with TemplateReader(npz) as reader:
        assert len(reader) == 8
        assert np.allclose(reader.times, [f.time for f in iter_video(drv, max_frames=8)], atol=1e-6)


def test_video_to_video_light_preparation_matches_a_full_one_every_frame(clip, tmp_path, monkeypatch):
    import faceanim.pipeline.run as run

    src, drv = str(clip("liveportrait_d10.mp4")), str(clip("liveportrait_d0.mp4"))
    outs = {}
    for refresh in (1, 15):  # 1: segmentation, inpainting and triangulation on every frame
        monkeypatch.setattr(run, "V2V_REFRESH", refresh)
        out = tmp_path / f"v2v{refresh}.mp4"
        animate_file(src, drv, str(out), JobOptions(max_frames=12, progress=False))
        outs[refresh] = np.stack([f.image for f in iter_video(out)]).astype(int)
    assert np.abs(outs[1] - outs[15]).mean() < 1.0
