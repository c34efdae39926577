"""Transfer a driver's motion onto a source face (LivePortrait eq. 7, on explicit 3D landmarks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceanim.face.analyze import FaceState
from faceanim.face.model import (
    LEFT_EYE_CORNERS,
    LEFT_IRIS_CENTER,
    RIGHT_EYE_CORNERS,
    RIGHT_IRIS_CENTER,
)
from faceanim.face.ratios import eye_open_ratios, lip_open_ratio
from faceanim.motion.retarget import set_eye_open, set_lip_open
from faceanim.motion.types import Motion


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


@dataclass(frozen=True)
class TargetFace:
    """The source face as it should look in one output frame, in source-crop pixels."""

    landmarks: np.ndarray  # (478, 3)
    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    expression: np.ndarray
    eye_open: np.ndarray
    lip_open: float


def _target_pose(source: FaceState, driving: Motion, reference: Motion, config: TransferConfig):
    src = source.pose
    if not config.pose:
        return src.rotation, src.scale, src.translation
    rotation = driving.rotation if config.mode == "absolute" else src.rotation @ reference.rotation.T @ driving.rotation
    ratio = src.scale / reference.scale
    scale = src.scale * driving.scale / reference.scale
    translation = src.translation + (driving.translation - reference.translation) * ratio
    return rotation, scale, translation


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


def transfer_motion(
    source: FaceState,
    driving: Motion,
    reference: Motion,
    config: TransferConfig = TransferConfig(),
    driver_min_lip: float | None = None,
) -> TargetFace:
    """Target landmarks for one frame: ``reference`` is the driver's first (neutral) frame.

    ``driver_min_lip`` (the driver's smallest lip-open ratio so far) lets a driver who starts with an open
    mouth still close a closed-mouthed source's lips: the lip reference drops to ``min_j c_d,j + c_s`` when
    that is lower, which never changes self-reenactment (where ``c_s = c_d,0``).
    """
    exp_s = source.expression
    ref_lip = reference.lip_open
    if driver_min_lip is not None:
        ref_lip = min(ref_lip, max(driver_min_lip, 0.0) + source.lip_open)
    if not config.expression:
        expression = exp_s.copy()
    elif config.mode == "absolute":
        expression = driving.expression.copy()
    else:
        expression = exp_s + config.expression_scale * (driving.expression - reference.expression)
    if not config.gaze:  # irises keep the source's gaze: they move only with their eyes
        for iris, corners in ((np.arange(468, 473), RIGHT_EYE_CORNERS), (np.arange(473, 478), LEFT_EYE_CORNERS)):
            c = list(corners)
            expression[iris] = exp_s[iris] + (expression[c].mean(0) - exp_s[c].mean(0))
    # Retargeting (c_t = c_s · c_d,i / c_d,0), then explicit user overrides.
    eyes = [None, None]
    if config.expression and config.retarget_eyes:
        ref = np.maximum(reference.eye_open, 0.05)
        eyes = list(np.clip(source.eye_open * driving.eye_open / ref, 0.0, 0.6))
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
