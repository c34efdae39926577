"""What faceanim sees in an image or a video: faces, pose, eye/lip ratios, tracking status (``faceanim inspect``).

Reports are JSON-serialisable dicts; an optional annotated copy (landmarks, pose axes, masks, status) is
written for a human to check. Annotations are diagnostics, not synthetic faces: they carry no provenance mark.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceanim.errors import MediaError
from faceanim.face.analyze import FaceState, describe_face
from faceanim.face.detect import FaceLandmarker, landmark_box
from faceanim.face.masks import Segmenter, face_region_mask, part_masks
from faceanim.face.track import FaceTracker, TrackerConfig, TrackStatus
from faceanim.media.image import read_image, write_image
from faceanim.media.kinds import is_audio_path, is_image_path, is_video_path
from faceanim.media.video import VideoWriter, iter_video, probe_video
from faceanim.render.annotate import (
    draw_banner,
    draw_face_box,
    draw_landmarks,
    draw_mask_overlay,
    draw_pose_axes,
    draw_text,
)

PART_COLORS = {
    "left_eye": (255, 255, 0),
    "right_eye": (255, 255, 0),
    "brows": (255, 128, 0),
    "lips": (255, 0, 128),
    "mouth": (128, 0, 255),
}


def _r(x: float, nd: int = 1) -> float:
    return round(float(x), nd)


def face_summary(state: FaceState) -> dict:
    """Pose (degrees), eye/lip ratios and scale of one face state, rounded for reading."""
    yaw, pitch, roll = state.angles
    return {
        "yaw": _r(yaw),
        "pitch": _r(pitch),
        "roll": _r(roll),
        "eye_open": [_r(max(state.eye_open[0], 0.0), 3), _r(max(state.eye_open[1], 0.0), 3)],
        "lip_open": _r(max(state.lip_open, 0.0), 3),  # signed internally (< 0: lips pressed/crossed)
        "scale": _r(state.pose.scale),
    }


def frame_ranges(indices: Iterable[int]) -> list[str]:
    """Compress sorted frame indices into ranges: [3, 12, 13, 14] -> ["3", "12-14"]."""
    out: list[str] = []
    start = prev = None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return out


def _require(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError("no such file", path=path)
    if p.is_dir():
        raise MediaError("is a directory, not a file", path=path)
    return p


def _annotate_face(img: np.ndarray, state: FaceState, box, label: str, parts: bool = True) -> np.ndarray:
    size = float(max(box[2] - box[0], box[3] - box[1], 1.0))
    if parts:
        masks = part_masks(state.landmarks, img.shape[:2])
        for name, m in masks.items():
            img = draw_mask_overlay(img, m, PART_COLORS[name], 0.45)
        img = draw_mask_overlay(img, face_region_mask(state.landmarks, img.shape[:2]), (0, 255, 0), 0.12)
    img = draw_landmarks(img, state.landmarks, (0, 255, 0), radius=max(1, round(size / 250)))
    img = draw_pose_axes(img, state.pose, length=0.8)
    return draw_face_box(img, box, label=label)


def _face_text(i: int | None, s: dict) -> str:
    return ("" if i is None else f"#{i} ") + (
        f"yaw {s['yaw']:+.1f} pitch {s['pitch']:+.1f} roll {s['roll']:+.1f}  "
        f"eyes {s['eye_open'][0]:.2f}/{s['eye_open'][1]:.2f} lip {s['lip_open']:.2f}"
    )


def inspect_image(path: str | Path, out: str | Path | None = None, face_limit: int = 8) -> dict:
    """Every face of an image (largest first) with box, pose, eye/lip ratios; optionally an annotated copy."""
    p = _require(path)
    image = read_image(p)
    h, w = image.shape[:2]
    with FaceLandmarker(max_faces=face_limit) as lm:
        detected = lm.detect(image)[:face_limit]
    faces = []
    states = []
    for i, d in enumerate(detected):
        state = describe_face(d.landmarks)
        states.append(state)
        faces.append({"index": i, "box": [round(float(v)) for v in d.box], **face_summary(state)})
    report = {"path": str(path), "kind": "image", "width": w, "height": h, "faces": faces, "output": None}
    if out is not None:
        with Segmenter() as seg:
            canvas = draw_mask_overlay(image, seg.foreground(image), (0, 120, 255), 0.25)
        for i, (d, state) in enumerate(zip(detected, states, strict=True)):
            canvas = _annotate_face(canvas, state, d.box, f"#{i}")
        if faces:
            canvas = draw_text(canvas, [_face_text(f["index"], f) for f in faces])
        else:
            canvas = draw_banner(canvas, "no face")
        write_image(out, canvas, metadata=None)
        report["output"] = str(out)
    return report


class _Range:
    """Running mean/min/max of a scalar without keeping the values."""

    def __init__(self) -> None:
        self.n, self.total, self.lo, self.hi = 0, 0.0, float("inf"), float("-inf")

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)

    def summary(self, nd: int = 1) -> dict | None:
        if not self.n:
            return None
        return {"mean": _r(self.total / self.n, nd), "min": _r(self.lo, nd), "max": _r(self.hi, nd)}


def inspect_video(
    path: str | Path,
    out: str | Path | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    tracker: TrackerConfig = TrackerConfig(),
) -> dict:
    """Track the face through a video (streaming, bounded memory): status counts, missing frames, pose and
    eye/lip ranges; optionally an annotated copy with landmarks, axes and status (MISSING frames: red banner)."""
    p = _require(path)
    info = probe_video(p)
    counts = {s.value: 0 for s in TrackStatus}
    missing: list[int] = []
    stats = {k: _Range() for k in ("yaw", "pitch", "roll", "left_eye_open", "right_eye_open", "lip_open")}
    n = 0
    total = info.frame_count or None
    if total and max_frames:
        total = min(total, max_frames)
    writing = VideoWriter(out, info.fps) if out is not None else nullcontext(None)
    with FaceTracker(tracker) as tr, writing as writer:
        frames = iter_video(p, max_frames=max_frames)
        for vf in tqdm(frames, total=total, disable=not progress, unit="frame", desc="inspect"):
            tf = tr.update(vf.image, vf.index, vf.time)
            counts[tf.status.value] += 1
            n += 1
            if tf.has_face and tf.state is not None:
                yaw, pitch, roll = tf.state.angles
                for k, v in (("yaw", yaw), ("pitch", pitch), ("roll", roll), ("lip_open", max(tf.state.lip_open, 0.0)),
                             ("left_eye_open", max(tf.state.eye_open[0], 0.0)),
                             ("right_eye_open", max(tf.state.eye_open[1], 0.0))):
                    stats[k].add(float(v))
            else:
                missing.append(vf.index)
            if writer is not None:
                writer.write(_annotate_frame(vf.image, vf.index, vf.time, tf.status, tf.state))
        if n == 0:  # raised inside the writer's context so no empty output is left behind
            raise MediaError("video has no frames", path=path)
    return {
        "path": str(path),
        "kind": "video",
        "width": info.width,
        "height": info.height,
        "fps": f"{info.fps.numerator}/{info.fps.denominator}",
        "frame_count": info.frame_count,
        "duration": None if info.duration is None else _r(info.duration, 3),
        "frames": n,
        "status": counts,
        "missing_frames": frame_ranges(missing),
        "pose": {k: stats[k].summary() for k in ("yaw", "pitch", "roll")},
        "eye_open": {"left": stats["left_eye_open"].summary(3), "right": stats["right_eye_open"].summary(3)},
        "lip_open": stats["lip_open"].summary(3),
        "output": None if out is None else str(out),
    }


def _annotate_frame(image: np.ndarray, index: int, time: float, status: TrackStatus, state: FaceState | None):
    if status is TrackStatus.MISSING or state is None:
        return draw_banner(image, f"no face  (frame {index})")
    lms = state.landmarks
    box = landmark_box(lms)
    img = _annotate_face(image, state, box, status.value, parts=False)
    s = face_summary(state)
    return draw_text(img, [f"frame {index}  t={time:.2f}s  {status.value}", _face_text(None, s)])


def inspect_file(
    path: str | Path, out: str | Path | None = None, max_frames: int | None = None, progress: bool = True,
    tracker: TrackerConfig = TrackerConfig(),
) -> dict:
    """Inspect an image or a video, whichever ``path`` is."""
    p = _require(path)
    if is_image_path(p):
        return inspect_image(p, out)
    if is_video_path(p):
        return inspect_video(p, out, max_frames=max_frames, progress=progress, tracker=tracker)
    if is_audio_path(p):
        if out is not None:
            raise MediaError("an annotated copy (--out) is made only for images and videos", path=path)
        return inspect_audio(p)
    raise MediaError("unsupported file type (expected an image, a video or an audio file)", path=path)


def inspect_audio(path: str | Path) -> dict:
    """Duration, sample rate, channels, codec and share of speech (energy voice activity) of an audio file.

    Decodes the whole file in streaming chunks (bounded memory for any length)."""
    from faceanim.audio.vad import EnergyVad, frame_rms_db
    from faceanim.media._common import open_input
    from faceanim.media.audio import audio_duration, iter_audio

    p = _require(path)
    with open_input(p) as container:
        if not container.streams.audio:
            raise MediaError("has no audio stream", path=path)
        st = container.streams.audio[0]
        rate, channels, codec = int(st.rate or 0), int(st.channels or 0), st.codec_context.name
    duration = audio_duration(p)
    vad = EnergyVad()
    frames = speech = 0
    for chunk in iter_audio(p, 16000, chunk_seconds=2.0):  # 2 s = 50 whole 40-ms frames
        flags = vad(frame_rms_db(chunk, 640))
        frames += flags.size
        speech += int(flags.sum())
    share = speech / frames if frames else 0.0
    return {"path": str(path), "kind": "audio", "duration": _r(duration, 2), "sample_rate": rate,
            "channels": channels, "codec": codec, "speech_share": _r(share, 3),
            "speech_seconds": _r(speech / 25.0, 2), "output": None}
