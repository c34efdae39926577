"""Describe a face in one frame (pose, expression, ratios) and prepare a source face once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanim.errors import NoFaceError
from faceanim.face.crop import CropConfig, CropTransform, compute_crop, warp_to_crop
from faceanim.face.detect import DetectedFace
from faceanim.face.masks import FaceMasks, Segmenter, compute_masks
from faceanim.face.pose import HeadPose, canonical_expression, estimate_head_pose
from faceanim.face.ratios import eye_open_ratios, gaze_offsets, lip_open_ratio


@dataclass(frozen=True)
class FaceState:
    """What one face does in one frame: landmarks (pixels of that frame), pose and pose-free expression."""

    landmarks: np.ndarray
    pose: HeadPose
    expression: np.ndarray
    eye_open: np.ndarray  # (left, right)
    lip_open: float
    gaze: np.ndarray  # (left_x, left_y, right_x, right_y) in eye widths

    @property
    def angles(self) -> tuple[float, float, float]:
        return self.pose.angles


def describe_face(landmarks: np.ndarray) -> FaceState:
    """Pose, expression and ratios of 478 landmarks."""
    landmarks = np.asarray(landmarks, np.float64)
    pose = estimate_head_pose(landmarks)
    expression = canonical_expression(landmarks, pose)
    return FaceState(
        landmarks=landmarks,
        pose=pose,
        expression=expression,
        eye_open=eye_open_ratios(expression),
        lip_open=float(lip_open_ratio(expression)),
        gaze=gaze_offsets(landmarks),
    )


@dataclass(frozen=True)
class SourceFace:
    """Everything about a source face computed once: the crop, its transform, its state and masks."""

    image: np.ndarray  # the full-resolution source image
    crop: CropTransform
    crop_image: np.ndarray
    state: FaceState  # in crop pixels
    masks: FaceMasks  # at crop resolution
    box: np.ndarray  # face box in the full image


def select_face(faces: list[DetectedFace], face_index: int, path: str | None = None) -> DetectedFace:
    """The ``face_index``-th largest face, or a clear error."""
    if not faces:
        raise NoFaceError("no face found", path=path)
    if not 0 <= face_index < len(faces):
        raise NoFaceError(f"face_index {face_index} requested but only {len(faces)} face(s) found", path=path)
    return faces[face_index]


def prepare_source_face(
    image: np.ndarray,
    face: DetectedFace,
    segmenter: Segmenter,
    crop_config: CropConfig = CropConfig(),
    masks: FaceMasks | None = None,
) -> SourceFace:
    """Crop, describe and mask one detected face of a source image (``masks``: reuse these instead, e.g. the
    previous frame's of a source video, whose crop follows the face)."""
    crop = compute_crop(face.landmarks, crop_config)
    crop_image = warp_to_crop(image, crop)
    crop_landmarks = crop.to_crop(face.landmarks)
    return SourceFace(
        image=image,
        crop=crop,
        crop_image=crop_image,
        state=describe_face(crop_landmarks),
        masks=compute_masks(crop_image, crop_landmarks, segmenter) if masks is None else masks,
        box=face.box,
    )
