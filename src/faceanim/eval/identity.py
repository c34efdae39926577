"""Identity similarity (CSIM) with dlib's 128-D ResNet face embedding (the ``[eval]`` extra).

``dlib-bin`` runs the network; ``face-recognition-models`` ships its weights (and dlib's 5-point shape
predictor), so nothing is downloaded. The face box comes from mediapipe's landmarks (already measured), the
5-point predictor aligns the 150×150 chip as dlib does, and two faces are the same person for dlib when
their embeddings are less than 0.6 apart.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold on the Euclidean distance of two embeddings
MISSING = ("CSIM not measured: the [eval] extra is missing "
           "(pip install 'faceanim[eval]': dlib-bin, face-recognition-models)")
_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


def model_files() -> tuple[Path, Path] | None:
    """The shape predictor and embedding network of ``face-recognition-models``, or None if not installed.

    The package's own ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its folder is
    located without importing it.
    """
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "models"
    paths = tuple(folder / name for name in _FILES)
    return (paths[0], paths[1]) if all(p.is_file() for p in paths) else None


class FaceEmbedder:
    """dlib's face embedding of one face per image, given that face's landmarks."""

    def __init__(self, predictor: Path, network: Path) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(predictor))
        self._net = dlib.face_recognition_model_v1(str(network))

    @classmethod
    def load(cls) -> FaceEmbedder | None:
        """The embedder, or None when dlib or the model files are not installed (see :data:`MISSING`)."""
        files = model_files()
        if files is None or importlib.util.find_spec("dlib") is None:
            return None
        return cls(*files)

    def embed(self, image: np.ndarray, landmarks: ArrayLike) -> np.ndarray | None:
        """The 128-D embedding of the face whose (478, 2+) landmarks are given; None if they are not finite."""
        pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
        if not np.isfinite(pts).all():
            return None
        (x0, y0), (x1, y1) = np.rint(pts.min(0)).astype(int), np.rint(pts.max(0)).astype(int)
        box = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        img = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        shape = self._shape(img, box)
        chip = self._dlib.get_face_chip(img, shape, size=150, padding=0.25)
        return np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float64)


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, float]:
    """(cosine similarity, Euclidean distance) of two embeddings; (nan, nan) if either is missing."""
    if a is None or b is None:
        return float("nan"), float("nan")
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    cos = float(np.dot(a, b) / den) if den > 0 else float("nan")
    return cos, float(np.linalg.norm(a - b))
