"""Drive an ``Animator`` with a clip through the pipeline's ``Session`` and hand back the frames to score.

Every frame of the clip goes through the session (as ``faceanim animate`` does, with the same default
smoothing), so eval measures what users get; only every ``every``-th frame is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceanim.face.crop import CropTransform, warp_to_crop
from faceanim.media.video import VideoFrame
from faceanim.pipeline.animator import Animator
from faceanim.pipeline.session import Session, SessionConfig, SessionFrame

LOOK_AHEAD_S = 0.3  # driver time pushed past the last scored frame (beyond the zero-phase smoother's reach)


@dataclass(frozen=True)
class EvalSettings:
    limit: int | None = 40  # scored frames per clip
    every: int = 2  # score every N-th frame (all frames are animated)
    sheet_frames: int = 4  # frames per clip in the contact sheet
    csim_frames: int = 8  # frames per clip embedded for identity similarity (dlib is slow on a CPU)
    session: SessionConfig = field(default_factory=SessionConfig)  # the CLI's file-job defaults


def valid_mask(image_shape: tuple[int, ...], crop: CropTransform) -> np.ndarray:
    """True where the crop shows the image itself, False where it is padding beyond the image's edges
    (and on the interpolated one-pixel rim that mixes both)."""
    return warp_to_crop(np.full(image_shape[:2], 255, np.uint8), crop) == 255


def every_kth(limit: int | None, count: int) -> int:
    """Spacing that picks about ``count`` of ``limit`` scored frames."""
    return max(1, (limit or 40) // max(1, count))


def session_frames(
    animator: Animator,
    frames: Iterable[VideoFrame],
    settings: EvalSettings,
    keep: Callable[[VideoFrame], Any],
    skip_first: bool = False,
) -> Iterator[tuple[Any, SessionFrame]]:
    """Push every frame into a session; yield ``(keep(frame), output)`` for the scored frames, in order.

    Scored frames are those with ``index % every == 0`` (frame 0 left out with ``skip_first``), at most
    ``limit`` of them. ``keep`` makes the (non-None) payload carried to the output: keep it small, the
    session holds up to its look-ahead of payloads.
    """
    scored = 0
    last_time: float | None = None  # of the last scored frame, once ``limit`` is reached
    with Session(animator, settings.session) as session:

        def ready(out: list[SessionFrame]) -> Iterator[tuple[Any, SessionFrame]]:
            for f in out:
                if f.payload is not None:
                    yield f.payload, f

        for vf in frames:
            if last_time is not None and vf.time > last_time + LOOK_AHEAD_S:
                break
            score = last_time is None and vf.index % settings.every == 0 and not (skip_first and vf.index == 0)
            payload = keep(vf) if score else None
            scored += int(score)
            if score and settings.limit is not None and scored >= settings.limit:
                last_time = vf.time  # a few more frames, so the last scored one is smoothed as mid-clip frames are
            yield from ready(session.push_image(vf.image, vf.time, payload))
        yield from ready(session.flush())

