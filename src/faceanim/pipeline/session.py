"""``Session``: the one time-aware per-frame loop every job, eval, bench and interface runs on.

A session turns a driver's samples (tracked landmarks, or ready motions from templates and speech) into
output frames. It owns what depends on time and on the driver as a whole:

- smoothing — zero-phase with a bounded look-ahead for file jobs (no lag), causal for live input;
- the reference — the driver's first face is the neutral frame relative motion is taken against, and its
  robust statistics (``DriverReference``: eye openness, lip range over the first ``reference_seconds``) are
  taken before the first frame is rendered (file jobs) or updated as frames arrive (live);
- time — every output frame keeps its driver sample's timestamp, so variable frame rates stay in sync with
  their audio; frames without a face hold the last motion (or show the neutral source) and are reported.

Memory is bounded: at most the look-ahead (smoothing radius, or the reference window at the start) is held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from faceanim.face.analyze import describe_face
from faceanim.face.track import FaceTracker, TrackerConfig
from faceanim.motion.smoothing import CausalSmoother, SmoothingConfig, ZeroPhaseSmoother
from faceanim.motion.transfer import TransferConfig
from faceanim.motion.types import Motion
from faceanim.pipeline.animator import Animator, FrameResult
from faceanim.pipeline.engine import Stage

MISSING = "missing"


@dataclass(frozen=True)
class SessionConfig:
    smoothing: float = 1.0  # 0 = off; larger = smoother (zero-phase sigma = smoothing × 30 ms)
    live: bool = False  # True: causal smoothing and no look-ahead (camera, stream); False: a file job
    reference_seconds: float = 2.0  # driver time the robust reference statistics are taken over
    face_index: int = 0  # which driver face to follow (largest first) when the session tracks frames itself
    compose: bool = True  # paste back in the session; False leaves ``image`` None for a later ``compose_stage``


@dataclass(frozen=True)
class DriverSample:
    """One driving step: tracked landmarks (video, camera) or a ready motion (template, speech)."""

    index: int
    time: float  # seconds on the driver's clock
    landmarks: np.ndarray | None = None  # (478, 3) in the driver frame's pixels
    motion: Motion | None = None
    status: str = "tracked"  # detected | tracked | missing | template | speech
    payload: Any = None  # carried to the output untouched (capture time, a source-video frame, ...)


@dataclass(frozen=True)
class SessionFrame:
    """One output frame, at its driver sample's time."""

    index: int
    time: float
    image: np.ndarray | None  # the full frame (or the crop with ``crop_only``); None: not composed yet
    motion: Motion | None  # None: no face seen yet (the neutral source is shown)
    status: str
    payload: Any
    result: FrameResult | None = None


class TimeCursor:
    """The latest item of a time-ordered stream at a given time: pairs two streams by time, not by index
    (a 25 fps driver on a 30 fps source video keeps its speed). Reads the stream lazily, one item ahead."""

    def __init__(self, items: Iterator[Any], time_of: Callable[[Any], float] = lambda item: item.time) -> None:
        self._items = items
        self._time_of = time_of
        self._current: Any = None
        self._next: Any = next(items, None)

    def at(self, time: float) -> Any:
        """The last item with time ≤ ``time`` (the first item while ``time`` precedes it; None if empty)."""
        while self._next is not None and self._time_of(self._next) <= time + 1e-6:
            self._current, self._next = self._next, next(self._items, None)
        return self._current if self._current is not None else self._next


def _driver_reference(motions: Sequence[Motion]) -> Any:
    """The transfer's robust driver statistics, when the transfer module offers them."""
    from faceanim.motion import transfer

    make = getattr(transfer, "driver_reference", None)
    return make(list(motions)) if make is not None and motions else None


class Session:
    """Feed driver samples in order with :meth:`push` (or frames with :meth:`push_image`); call :meth:`flush` at
    the end. Each call returns the output frames that are ready, in order."""

    def __init__(self, animator: Animator | None, config: SessionConfig = SessionConfig(),
                 reference: Motion | None = None) -> None:
        """``animator`` None: motion only (``SessionFrame.image`` is None), e.g. to save a motion template.

        ``reference``: a fixed reference instead of the driver's first face — for drivers whose motion is already
        expressed against the source itself (speech), so nothing waits for a reference window.
        """
        self.animator = animator
        self.config = config
        smoothing = SmoothingConfig(strength=config.smoothing)
        self._smoother = CausalSmoother(smoothing) if config.live else ZeroPhaseSmoother(smoothing)
        self._samples: dict[int, DriverSample] = {}  # waiting in the smoother, by index
        self._unit: float | None = None  # face size of the current tracked segment (smoothing units)
        self._waiting: deque[tuple[DriverSample, Motion | None]] = deque()  # before the reference is known
        self._reference: Motion | None = reference
        self._fixed_reference = reference is not None
        self._start = 0.0  # driver time of the first face
        self._reference_motions: list[Motion] = [] if reference is None else [reference]
        self._driver: Any = None if reference is None else _driver_reference([reference])
        self._last: Motion | None = None
        self._tracker: FaceTracker | None = None
        self._next_index = 0  # of frames given to push_image
        self.frames = 0
        self.missing = 0

    # ------------------------------------------------------------------------------------------ controls

    def set_transfer(self, transfer: TransferConfig) -> None:
        """Change what of the motion reaches the source (sliders of a live app) from the next frame on."""
        if self.animator is not None:
            self.animator.config = replace(self.animator.config, transfer=transfer)

    @property
    def reference(self) -> Motion | None:
        """The driver's first face (the neutral frame relative motion is taken against)."""
        return self._reference

    @property
    def driver(self) -> Any:
        """The driver's robust reference statistics (``motion.transfer.DriverReference``), once known."""
        return self._driver

    # ------------------------------------------------------------------------------------------ input

    def push(self, sample: DriverSample) -> list[SessionFrame]:
        """Add one driver sample; returns the frames now ready."""
        if sample.landmarks is None:
            self._unit = None
            if sample.motion is not None:  # ready motions (templates, speech) are not smoothed again
                ready = self._smoother.flush() if not self.config.live else []
                out = self._from_smoother(ready)
                return out + self._with_motion(sample, sample.motion)
        self._samples[sample.index] = sample
        value = None
        if sample.landmarks is not None:
            lms = np.asarray(sample.landmarks, np.float64)
            if self._unit is None:  # one unit per segment keeps box noise out of the positions
                self._unit = float(max(np.ptp(lms[:, 0]), np.ptp(lms[:, 1]), 1.0))
            value = lms / self._unit
            self._samples[sample.index] = replace(sample, payload=(sample.payload, self._unit))
        return self._from_smoother(self._smoother.push(sample.index, sample.time, value))

    def push_image(self, image: np.ndarray, time: float, payload: Any = None) -> list[SessionFrame]:
        """Track the driver's face in ``image`` (frames in order) and add it as a sample."""
        if self._tracker is None:
            self._tracker = FaceTracker(TrackerConfig(face_index=self.config.face_index, describe=False))
        index = self._next_index
        self._next_index += 1
        tracked = self._tracker.update(image, index, time)
        return self.push(DriverSample(index, time, tracked.landmarks, None, tracked.status.value, payload))

    def flush(self) -> list[SessionFrame]:
        """The remaining frames at the end of the driver."""
        out = self._from_smoother(self._smoother.flush())
        out += self._release_waiting()
        return out

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ internals

    def _from_smoother(self, ready) -> list[SessionFrame]:
        out: list[SessionFrame] = []
        for index, value in ready:
            sample = self._samples.pop(index)
            if value is None:
                out += self._with_motion(sample, None)
                continue
            payload, unit = sample.payload
            sample = replace(sample, payload=payload)
            out += self._with_motion(sample, Motion.from_state(describe_face(value * unit)))
        return out

    def _with_motion(self, sample: DriverSample, motion: Motion | None) -> list[SessionFrame]:
        if motion is None and self._last is not None:
            motion = replace(self._last, valid=False)  # hold the last pose through a gap
        elif motion is not None and not motion.valid and self._last is None:
            motion = replace(motion, valid=True)
        if motion is not None and motion.valid:
            self._last = motion
            self._observe(sample, motion)
        if self.config.live or self._reference_complete(sample) or (motion is None and not self._waiting):
            # (frames before the first face show the neutral source: nothing to wait for, so a long faceless
            # opening is never held in memory)
            return [*self._release_waiting(), self._render(sample, motion)]
        self._waiting.append((sample, motion))
        return []

    def _observe(self, sample: DriverSample, motion: Motion) -> None:
        if self._fixed_reference:
            return
        if self._reference is None:
            self._reference = motion
            self._start = sample.time
        if sample.time - self._start <= self.config.reference_seconds:
            self._reference_motions.append(motion)
            if self.config.live:
                self._driver = _driver_reference(self._reference_motions)

    def _reference_complete(self, sample: DriverSample) -> bool:
        if self._fixed_reference:
            return True
        return self._reference is not None and sample.time - self._start >= self.config.reference_seconds

    def _release_waiting(self) -> list[SessionFrame]:
        if not self._waiting:
            return []
        if self._driver is None:
            self._driver = _driver_reference(self._reference_motions)
        out = [self._render(s, m) for s, m in self._waiting]
        self._waiting.clear()
        return out

    def _render(self, sample: DriverSample, motion: Motion | None) -> SessionFrame:
        self.frames += 1
        status = sample.status if motion is None or motion.valid else MISSING
        if motion is None or not motion.valid:
            self.missing += 1
        if self.animator is None:
            return SessionFrame(sample.index, sample.time, None, motion, status, sample.payload)
        if motion is None or self._reference is None:
            return SessionFrame(sample.index, sample.time, self.animator.neutral(), None, status, sample.payload)
        if self._driver is None and not self.config.live:
            self._driver = _driver_reference(self._reference_motions)
        if self.config.compose:
            result = self.animator.animate(motion, self._reference, driver=self._driver)
        else:
            result = self.animator.render(motion, self._reference, driver=self._driver)
        return SessionFrame(sample.index, sample.time, result.image, motion, status, sample.payload, result)


def session_stage(session: Session) -> Stage:
    """Engine stage: driver samples → output frames (motion, reference, smoothing, render, paste-back)."""

    def stage(samples: Iterator[DriverSample]) -> Iterator[SessionFrame]:
        for sample in samples:
            yield from session.push(sample)
        yield from session.flush()

    return stage


def compose_stage(animator: Animator) -> Stage:
    """Engine stage: paste rendered crops back into the full frame (while the session renders the next one)."""

    def stage(frames: Iterator[SessionFrame]) -> Iterator[SessionFrame]:
        for frame in frames:
            if frame.image is None and frame.result is not None:
                result = animator.compose(frame.result)
                frame = replace(frame, image=result.image, result=result)
            yield frame

    return stage
