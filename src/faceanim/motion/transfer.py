"""Transfer a driver's motion onto a source face (LivePortrait eq. 7, on explicit 3D landmarks).

Per output frame, with ``s`` the source, ``d,0`` the driver's reference (first) frame, ``d,i`` the current one:

- **pose**: ``R_t = R_s R_d,0ᵀ R_d,i`` (relative) or ``R_t = F R_d,i`` (absolute); ``scale_t = scale_s ·
  scale_d,i / scale_d,0``; ``t_t = t_s + F (t_d,i − t_d,0) · scale_s / scale_d,0``. ``F`` is the in-plane
  rotation that takes the driver reference's eye line onto the source's: the source lives in an eye-level
  crop, so the driver's image axes must be turned the same way (without it, absolute mode and every
  translation were off by the source's head roll).
- **expression** (canonical, pose-free landmarks): relative ``x_s + k (x_d,i − x_d,0)``, except around the
  mouth, where the driver's displacement is taken from its mouth reference (the closed-mouth shape when the
  driver starts open-mouthed and the source does not) and rescaled by ``w_s / w_d`` (source over driver
  mouth width), so opening, shape and smile (corner motion) carry over in proportion to the source's mouth;
  absolute takes ``x_d,i`` itself (the driver's own face shape: for re-enacting the same person).
- **eyes**: ``c_t = c_s · c_d,i / c_d,ref``, capped at the source's plausible maximum
  (:func:`~faceanim.motion.retarget.max_eye_open`).
- **lips** (additive, a ratio of the mouth width): ``c_t = max(0, c_s + k (c_d,i − c_d,ref))``.
- then explicit overrides (eyes, lip, gaze), uncapped.

The references ``c_d,ref`` come from :class:`DriverReference` (see :func:`driver_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceanim.face.analyze import FaceState
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import (
    LEFT_EYE_CORNERS,
    LEFT_IRIS_CENTER,
    RIGHT_EYE_CORNERS,
    RIGHT_IRIS_CENTER,
)
from faceanim.face.ratios import eye_open_ratios, lip_open_ratio
from faceanim.motion.retarget import max_eye_open, mouth_weight, mouth_width, set_eye_open, set_lip_open
from faceanim.motion.types import Motion, TargetFace

__all__ = ["DriverReference", "TargetFace", "TransferConfig", "driver_reference", "transfer_motion"]

EYE_OPEN_PERCENTILE = 90.0  # the driver's "eyes open": blinks and downward glances are well under 10 % of frames
EYE_REFERENCE_SHARE = 0.75  # below 0.75 × that a first frame is a blink or a glance (ordinary ones: 0.77-1.05)
CLOSED_SHAPE_PERCENTILE = 10.0  # frames whose mouth shape stands for the driver's closed mouth


@dataclass(frozen=True)
class TransferConfig:
    """What of the driver's motion reaches the source, and user overrides."""

    mode: Literal["relative", "absolute"] = "relative"
    pose: bool = True
    expression: bool = True
    expression_scale: float = 1.0
    retarget_eyes: bool = True
    retarget_lip: bool = True
    eyes_open: float | None = None  # force both eyes' open ratio
    left_eye_open: float | None = None
    right_eye_open: float | None = None
    lip_open: float | None = None
    gaze: bool = True
    gaze_direction: tuple[float, float] | None = None  # (x, y) iris offset in eye widths, e.g. (0.1, 0)
    head_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (yaw, pitch, roll) degrees added to the head pose


@dataclass(frozen=True)
class DriverReference:
    """Robust statistics of a driver over its first seconds: what "eyes open" and "mouth closed" look like.

    ``eye_open`` is the 90th percentile of each eye's openness (a first frame caught mid-blink or looking
    down would otherwise make every later frame look wide open). ``lip_closed`` is the smallest lip-open
    ratio, floored at 0: talkers close their lips only now and then (one clip's 10th percentile over its first
    2 s was 0.15, its minimum 0.003), and a tracking glitch can only push the minimum down, where the floor
    stops it. ``closed_expression`` is the mean canonical expression of the lowest 10 % of frames by lip
    opening: the mouth shape that goes with it.
    """

    eye_open: np.ndarray  # (left, right)
    lip_closed: float
    closed_expression: np.ndarray  # (478, 3)
    frames: int

    @property
    def mouth_width(self) -> float:
        return mouth_width(self.closed_expression)


def driver_reference(motions: Sequence[Motion]) -> DriverReference:
    """Reference statistics from a driver's frames (e.g. its first ~2 s); frames without a face are ignored."""
    seen = [m for m in motions if m.valid] or list(motions)
    if not seen:
        raise ValueError("driver_reference needs at least one frame")
    eyes = np.stack([np.asarray(m.eye_open, np.float64) for m in seen])
    lips = np.array([m.lip_open for m in seen], np.float64)
    shape_at = float(np.percentile(lips, CLOSED_SHAPE_PERCENTILE))
    closed = np.stack([m.expression for m, lip in zip(seen, lips, strict=True) if lip <= shape_at])
    return DriverReference(
        eye_open=np.percentile(eyes, EYE_OPEN_PERCENTILE, axis=0),
        lip_closed=max(float(lips.min()), 0.0),
        closed_expression=closed.mean(0),
        frames=len(seen),
    )


def _eye_line_angle(rotation: np.ndarray, expression: np.ndarray) -> float:
    """Image-plane angle of the line from the right to the left eye (as :func:`compute_crop` levels it)."""
    v = rotation @ (expression[list(LEFT_EYE_CORNERS)].mean(0) - expression[list(RIGHT_EYE_CORNERS)].mean(0))
    return float(np.arctan2(v[1], v[0]))


def _frame_rotation(source: FaceState, reference: Motion) -> np.ndarray:
    """In-plane rotation taking the driver's image axes to the source crop's (eye line onto eye line)."""
    a = _eye_line_angle(source.pose.rotation, source.expression) - _eye_line_angle(
        reference.rotation, reference.expression
    )
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _target_pose(source: FaceState, driving: Motion, reference: Motion, config: TransferConfig):
    src = source.pose
    if not config.pose:
        return _offset(src.rotation, config), src.scale, src.translation
    frame = _frame_rotation(source, reference)
    if config.mode == "absolute":
        rotation = frame @ driving.rotation
    else:
        rotation = src.rotation @ reference.rotation.T @ driving.rotation
    ratio = src.scale / reference.scale
    scale = src.scale * driving.scale / reference.scale
    translation = src.translation + frame @ (driving.translation - reference.translation) * ratio
    return _offset(rotation, config), scale, translation


def _offset(rotation: np.ndarray, config: TransferConfig) -> np.ndarray:
    """The user's head-pose offset, turned about the camera's axes (positive yaw: toward the image's right)."""
    if not any(config.head_offset):
        return rotation
    return rotation_from_euler(*config.head_offset) @ rotation


def _set_gaze(expression: np.ndarray, direction: tuple[float, float]) -> np.ndarray:
    """Place both irises at ``direction`` (eye widths) from their eye centres, in canonical space."""
    out = expression.copy()
    for centre_idx, corners, ring in (
        (LEFT_IRIS_CENTER, LEFT_EYE_CORNERS, np.arange(474, 478)),
        (RIGHT_IRIS_CENTER, RIGHT_EYE_CORNERS, np.arange(469, 473)),
    ):
        eye_centre = 0.5 * (out[corners[0]] + out[corners[1]])
        width = float(np.linalg.norm(out[corners[0], :2] - out[corners[1], :2]))
        goal = eye_centre[:2] + np.asarray(direction) * width
        shift = goal - out[centre_idx, :2]
        out[[centre_idx, *ring], :2] += shift
    return out


def _lip_reference(source: FaceState, reference: Motion, closed: float | None) -> float:
    """``min(c_d,0, closed + c_s)``: a driver who starts open-mouthed can still close a closed-mouthed
    source's lips; self-reenactment (``c_s = c_d,0``) keeps ``c_d,0``."""
    if closed is None:
        return reference.lip_open
    return min(reference.lip_open, max(closed, 0.0) + source.lip_open)


def _mouth_reference(reference: Motion, driver: DriverReference | None, lip_ref: float) -> np.ndarray:
    """The driver expression the mouth's displacement is measured from: the first frame, moved toward the
    closed-mouth shape as far as the lip reference moved toward the closed lip ratio."""
    if driver is None or reference.lip_open - driver.lip_closed <= 1e-6:
        return reference.expression
    alpha = float(np.clip((reference.lip_open - lip_ref) / (reference.lip_open - driver.lip_closed), 0.0, 1.0))
    return reference.expression + alpha * (driver.closed_expression - reference.expression)


def _relative_expression(source: FaceState, driving: Motion, reference: Motion, mouth_ref: np.ndarray,
                         scale: float) -> np.ndarray:
    face = driving.expression - reference.expression
    mouth = (driving.expression - mouth_ref) * (mouth_width(source.expression) / max(mouth_width(mouth_ref), 1e-9))
    w = mouth_weight()[:, None]
    return source.expression + scale * ((1.0 - w) * face + w * mouth)


def transfer_motion(
    source: FaceState,
    driving: Motion,
    reference: Motion,
    config: TransferConfig = TransferConfig(),
    driver: DriverReference | float | None = None,
    *,
    driver_min_lip: float | None = None,
) -> TargetFace:
    """Target landmarks for one frame; ``reference`` is the driver's first frame (see the module docstring).

    ``driver``: the driver's :class:`DriverReference`. Without it the first frame is the reference for eyes
    and mouth. The eye reference is ``max(c_d,0, 0.75 · P90)``: the first frame unless it is clearly less open
    than the driver's usual open eyes (a blink, a downward glance), which would open the source's eyes too
    wide. On the sample clips ordinary first frames are at 0.77–1.05 of P90, so self-reenactment keeps its
    first frame; a half-closed start (~0.5) does not. The lip reference is ``min(c_d,0, lip_closed + c_s)``.
    A float (or ``driver_min_lip``) is the older interface: the driver's smallest lip-open ratio so far, used
    as ``lip_closed``.
    """
    if isinstance(driver, DriverReference):
        closed: float | None = driver.lip_closed
        stats: DriverReference | None = driver
    else:
        closed, stats = (driver if driver is not None else driver_min_lip), None
    exp_s = source.expression
    ref_lip = _lip_reference(source, reference, closed)
    if not config.expression:
        expression = exp_s.copy()
    elif config.mode == "absolute":
        expression = driving.expression.copy()
    else:
        mouth_ref = _mouth_reference(reference, stats, ref_lip)
        expression = _relative_expression(source, driving, reference, mouth_ref, config.expression_scale)
    if not config.gaze:  # irises keep the source's gaze: they move only with their eyes
        for iris, corners in ((np.arange(468, 473), RIGHT_EYE_CORNERS), (np.arange(473, 478), LEFT_EYE_CORNERS)):
            c = list(corners)
            expression[iris] = exp_s[iris] + (expression[c].mean(0) - exp_s[c].mean(0))
    # Retargeting (c_t = c_s · c_d,i / c_d,ref, bounded), then explicit user overrides.
    eyes: list[float | None] = [None, None]
    if config.expression and config.retarget_eyes:
        ref = np.asarray(reference.eye_open, np.float64)
        if stats is not None:
            ref = np.maximum(ref, EYE_REFERENCE_SHARE * stats.eye_open)
        wanted = source.eye_open * driving.eye_open / np.maximum(ref, 0.05)
        eyes = [float(v) for v in np.clip(wanted, 0.0, max_eye_open(exp_s, source.eye_open))]
    if config.eyes_open is not None:
        eyes = [config.eyes_open, config.eyes_open]
    if config.left_eye_open is not None:
        eyes[0] = config.left_eye_open
    if config.right_eye_open is not None:
        eyes[1] = config.right_eye_open
    if eyes[0] is not None or eyes[1] is not None:
        expression = set_eye_open(expression, eyes[0], eyes[1])
    lip = None
    if config.expression and config.retarget_lip:
        lip = max(0.0, source.lip_open + config.expression_scale * (driving.lip_open - ref_lip))
    if config.lip_open is not None:
        lip = config.lip_open
    if lip is not None:
        expression = set_lip_open(expression, lip)
    if config.gaze_direction is not None:
        expression = _set_gaze(expression, config.gaze_direction)
    rotation, scale, translation = _target_pose(source, driving, reference, config)
    landmarks = scale * expression @ rotation.T + translation
    return TargetFace(
        landmarks=landmarks,
        rotation=rotation,
        scale=scale,
        translation=translation,
        expression=expression,
        eye_open=eye_open_ratios(expression),
        lip_open=float(lip_open_ratio(expression)),
    )
