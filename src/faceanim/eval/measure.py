"""Measure what a frame shows (landmarks, pose, expression, ratios, foreground, identity) for the metrics."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from faceanim.eval.identity import FaceEmbedder
from faceanim.face.analyze import describe_face
from faceanim.face.detect import FaceLandmarker
from faceanim.face.masks import Segmenter

NAN3 = np.full((478, 3), np.nan)
CACHE_SIZE = 256  # measured frames kept for reuse (one clip's ground truth across renderers)


@dataclass(frozen=True)
class FrameMeasure:
    landmarks: np.ndarray  # (478, 3) in the frame's pixels, NaN when no face
    angles: np.ndarray  # (3,) yaw, pitch, roll
    rotation: np.ndarray  # (3, 3)
    expression: np.ndarray  # (478, 3) canonical
    eye_open: np.ndarray  # (2,)
    lip_open: float
    foreground: np.ndarray | None
    embedding: np.ndarray | None = None  # dlib's 128-D identity embedding, when asked for and available

    @property
    def found(self) -> bool:
        return bool(np.isfinite(self.landmarks).all())


class FrameMeasurer:
    """Re-detects the face in an (output or ground-truth) frame from scratch, as the metrics require.

    ``identity``: also embed faces with dlib when asked (``embedder`` is None when the ``[eval]`` extra is
    missing). Measures passed a ``key`` are cached (bounded), so a clip's ground truth is measured once for
    all renderers.
    """

    def __init__(self, foreground: bool = True, identity: bool = True) -> None:
        self._lm = FaceLandmarker(max_faces=1)
        self._seg = Segmenter() if foreground else None
        self.embedder = FaceEmbedder.load() if identity else None
        self._cache: OrderedDict[Hashable, FrameMeasure] = OrderedDict()

    def close(self) -> None:
        self._lm.close()
        if self._seg is not None:
            self._seg.close()
        self._cache.clear()

    def clear_cache(self) -> None:
        """Forget cached measures (call when moving to the next clip)."""
        self._cache.clear()

    def __enter__(self) -> FrameMeasurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def measure(
        self, image: np.ndarray, *, foreground: bool = True, embed: bool = False, key: Hashable | None = None
    ) -> FrameMeasure:
        """Measure ``image``; ``embed`` adds the identity embedding (if the embedder is available)."""
        if key is not None and key in self._cache:
            m = self._cache[key]
            if (m.foreground is not None or not foreground) and (m.embedding is not None or not embed):
                return m
        m = self._measure(image, foreground, embed)
        if key is not None:
            self._cache[key] = m
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return m

    def _measure(self, image: np.ndarray, foreground: bool, embed: bool) -> FrameMeasure:
        faces = self._lm.detect(image, fallback=False)
        fg = self._seg.foreground(image) if (self._seg is not None and foreground) else None
        if not faces:
            nan = float("nan")
            return FrameMeasure(NAN3, np.full(3, nan), np.full((3, 3), nan), NAN3, np.full(2, nan), nan, fg)
        st = describe_face(faces[0].landmarks)
        emb = self.embedder.embed(image, st.landmarks) if (embed and self.embedder is not None) else None
        return FrameMeasure(
            st.landmarks, np.array(st.angles), st.pose.rotation, st.expression, st.eye_open, st.lip_open, fg, emb
        )
