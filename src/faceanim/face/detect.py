"""Face detection and 478-point landmarks (with iris) from mediapipe's bundled models."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class DetectedFace:
    """One face: 478 landmarks (x, y in image pixels; z in the same pixel units) and its box."""

    landmarks: np.ndarray
    box: np.ndarray  # x0, y0, x1, y1

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) bounding box of landmarks."""
    return np.concatenate([points[:, :2].min(0), points[:, :2].max(0)])


def _to_pixels(landmarks, width: int, height: int) -> np.ndarray:
    return np.array([(p.x * width, p.y * height, p.z * width) for p in landmarks.landmark], np.float64)


class FaceLandmarker:
    """Find every face in an image and return its landmarks, largest face first.

    ``tracking=True`` lets mediapipe reuse the previous frame's landmarks (video); otherwise every call
    detects afresh. Images are analysed at most ``max_side`` pixels on the long side and the landmarks are
    scaled back to full resolution. When the mesh's short-range detector finds nothing (small faces in
    full-body shots) the full-range detector proposes boxes and the mesh runs on each enlarged box.
    """

    def __init__(
        self, max_faces: int = 4, tracking: bool = False, min_confidence: float = 0.5, max_side: int = 1280
    ) -> None:
        import mediapipe as mp

        self._mp = mp
        self.max_faces = max_faces
        self.tracking = tracking
        self.max_side = max_side
        self.min_confidence = min_confidence
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not tracking,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=0.5,
        )
        self._crop_mesh = None
        self._detector = None

    def close(self) -> None:
        for m in (self._mesh, self._crop_mesh, self._detector):
            if m is not None:
                m.close()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, image: np.ndarray, fallback: bool = True) -> list[DetectedFace]:
        """All faces in an RGB uint8 image, sorted by size (largest first)."""
        h, w = image.shape[:2]
        f = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1.0 else image
        faces = self._run_mesh(self._mesh, small, f)
        if not faces and fallback and not self.tracking:
            faces = self._detect_small_faces(small, f)
        return sorted(faces, key=lambda d: -d.area)

    def _run_mesh(self, mesh, image: np.ndarray, f: float, offset=(0.0, 0.0), k: float = 1.0):
        res = mesh.process(np.ascontiguousarray(image))
        out = []
        for lm in res.multi_face_landmarks or []:
            pts = _to_pixels(lm, image.shape[1], image.shape[0])
            pts[:, :2] = pts[:, :2] / k + np.asarray(offset)
            pts[:, 2] /= k
            pts /= f
            out.append(DetectedFace(landmarks=pts, box=landmark_box(pts)))
        return out

    def _detect_small_faces(self, image: np.ndarray, f: float) -> list[DetectedFace]:
        mp = self._mp
        if self._detector is None:
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.4
            )
            self._crop_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
        h, w = image.shape[:2]
        res = self._detector.process(np.ascontiguousarray(image))
        faces = []
        for det in (res.detections or [])[: self.max_faces]:
            bb = det.location_data.relative_bounding_box
            cx, cy = (bb.xmin + bb.width / 2) * w, (bb.ymin + bb.height / 2) * h
            side = 2.5 * max(bb.width * w, bb.height * h)
            x0, y0 = round(cx - side / 2), round(cy - side / 2)
            x1, y1 = round(cx + side / 2), round(cy + side / 2)
            pad = [(max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0)]
            region = np.pad(image[max(y0, 0):y1, max(x0, 0):x1], pad, mode="edge")
            k = 384.0 / max(region.shape[:2])
            region = cv2.resize(region, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
            faces += self._run_mesh(self._crop_mesh, region, f, offset=(x0, y0), k=k)
        return faces
