"""Prepared portraits and driver motions cached per upload, so a slider move re-renders one still frame only."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from faceanim.app.controls import Controls
from faceanim.errors import MediaError, NoFaceError
from faceanim.face.detect import FaceLandmarker
from faceanim.media.image import read_image
from faceanim.media.kinds import is_image_path
from faceanim.media.video import iter_video
from faceanim.motion.templates import procedural_template
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator
from faceanim.pipeline.drive import motion_from_image
from faceanim.pipeline.run import TEMPLATE_PREFIX
from faceanim.render.annotate import draw_face_box

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used cache (bounded memory: at most ``size`` entries)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: preparing a portrait takes a while
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the cache key of an upload, whatever its temp name)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FaceList:
    """The faces found in a portrait, largest first, drawn with their numbers for the face selector."""

    count: int
    annotated: np.ndarray


@dataclass(frozen=True)
class DriverPose:
    """One driver frame's motion and the reference it is taken against."""

    motion: Motion
    reference: Motion | None  # None for an image driver until the source is known
    image_driver: bool  # a single expression image: the reference comes from the source itself


class PreviewCache:
    """Prepared :class:`Animator` per (portrait bytes, face, renderer, crop size) and driver motions per frame."""

    def __init__(self, portraits: int = 4, drivers: int = 16) -> None:
        self._animators: LRU[tuple, tuple[Animator, threading.Lock]] = LRU(portraits)
        self._drivers: LRU[tuple, DriverPose] = LRU(drivers)
        self._faces: LRU[str, FaceList] = LRU(portraits)
        self.prepared = 0  # how many times a portrait was actually prepared (the cache's misses)

    def faces(self, portrait: str | Path) -> FaceList:
        """Number and picture of the faces in ``portrait`` (cached)."""
        def make() -> FaceList:
            image = read_image(portrait)
            with FaceLandmarker(max_faces=8) as lm:
                found = lm.detect(image)
            out = image
            for i, f in enumerate(found):
                out = draw_face_box(out, f.box, label=str(i))
            return FaceList(len(found), out)

        return self._faces.get(file_digest(portrait), make)

    def animator(self, portrait: str | Path, controls: Controls) -> tuple[Animator, threading.Lock]:
        """The prepared source for ``portrait`` with ``controls``' face, renderer and crop size (cached)."""
        key = (file_digest(portrait), *controls.prepare_key())

        def make() -> tuple[Animator, threading.Lock]:
            self.prepared += 1
            image = read_image(portrait)
            return Animator.prepare(image, controls.animator_config(), controls.face, path=Path(portrait).name), \
                threading.Lock()

        return self._animators.get(key, make)

    def driver(self, driving: str | None, at: float, source: Animator) -> DriverPose:
        """The driver's motion ``at`` seconds in (video, template) or of the image; None driver = the source."""
        if not driving:
            own = Motion.from_state(source.source.state)
            return DriverPose(own, own, False)
        if driving.startswith(TEMPLATE_PREFIX):
            key: tuple = (driving, at)
        else:
            key = (file_digest(driving), at)
        pose = self._drivers.get(key, lambda: _driver_pose(driving, at))
        if pose.image_driver:
            return replace(pose, reference=source.image_reference(pose.motion))
        return pose


def _driver_pose(driving: str, at: float) -> DriverPose:
    if driving.startswith(TEMPLATE_PREFIX):
        tpl = procedural_template(driving[len(TEMPLATE_PREFIX):])
        i = min(len(tpl) - 1, max(0, round(at * float(tpl.fps))))
        return DriverPose(tpl.motions[i], tpl.motions[0], False)
    name = Path(driving).name
    if is_image_path(driving):
        return DriverPose(motion_from_image(read_image(driving), path=name), None, True)
    first: np.ndarray | None = None
    chosen: np.ndarray | None = None
    for vf in iter_video(driving):  # streams: decodes up to ``at`` and stops
        if first is None:
            first = vf.image
        chosen = vf.image
        if vf.time >= at:
            break
    if first is None or chosen is None:
        raise MediaError("no frames", path=name)
    try:
        reference = motion_from_image(first, path=name)
    except NoFaceError as e:
        raise NoFaceError("no face in the driving video's first frame", path=name) from e
    try:
        motion = motion_from_image(chosen, path=name)
    except NoFaceError as e:
        raise NoFaceError(f"no face in the driving video at {at:.1f} s", path=name) from e
    return DriverPose(motion, reference, False)


def render_preview(cache: PreviewCache, portrait: str, driving: str | None, controls: Controls,
                   at: float = 0.0) -> np.ndarray:
    """One still frame of the result with ``controls``: the prepared source is reused, only this frame renders."""
    prepared, lock = cache.animator(portrait, controls)
    pose = cache.driver(driving, at, prepared)
    config = replace(prepared.config, transfer=controls.transfer(), crop_only=controls.crop_only)
    with lock:  # one render at a time on a prepared source (renderers may keep scratch buffers)
        animator = Animator(prepared.faces, prepared.renderer, config)
        assert pose.reference is not None
        return animator.animate(pose.motion, pose.reference).image


def crop_preview(cache: PreviewCache, portrait: str, controls: Controls) -> np.ndarray:
    """The aligned face crop the renderer works on (of the selected face)."""
    prepared, _ = cache.animator(portrait, controls)
    return prepared.source.crop_image


def is_image_driver(driving: str | None) -> bool:
    return bool(driving) and not str(driving).startswith(TEMPLATE_PREFIX) and is_image_path(str(driving))
