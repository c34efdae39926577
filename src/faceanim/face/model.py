"""The canonical 3D face and the mesh topology shared by every stage (loaded from a bundled npz)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

N_LANDMARKS = 478
RIGHT_IRIS_CENTER = 468  # subject's right eye (image left in a non-mirrored photo)
LEFT_IRIS_CENTER = 473
# Eyelid pairs (upper, lower) and eye corners (outer, inner), mediapipe indices.
RIGHT_EYE_LIDS = ((159, 145), (158, 153), (160, 144), (157, 154), (161, 163))
LEFT_EYE_LIDS = ((386, 374), (385, 380), (387, 373), (384, 381), (388, 390))
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
# Eyelid and lip contours split into upper and lower arcs (corners excluded).
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
# Inner-lip pairs (upper, lower) and mouth corners.
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
MOUTH_CORNERS = (61, 291)
# Points that barely move with expression: used for a stable head-pose fit.
RIGID_POINTS = (
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2,  # midline forehead and nose
    33, 133, 263, 362,  # eye corners
    127, 234, 93, 356, 454, 323,  # temples and cheeks
    109, 67, 103, 338, 297, 332,  # forehead
    129, 358, 98, 327, 48, 278, 115, 344,  # nose wings and cheeks
)


@dataclass(frozen=True)
class FaceModel:
    """Canonical face (478×3, unit RMS radius; x: subject right→left, y: down, z: into screen) and topology."""

    canonical: np.ndarray
    mirror: np.ndarray
    triangles: np.ndarray
    groups: dict[str, np.ndarray]

    def group(self, name: str) -> np.ndarray:
        return self.groups[name]


@lru_cache(maxsize=1)
def load_face_model() -> FaceModel:
    """Load the bundled face model (built by ``scripts/make_face_model.py``)."""
    with resources.files("faceanim.assets").joinpath("face_model.npz").open("rb") as f, np.load(f) as z:
        groups = {k[len("group_"):]: z[k].copy() for k in z.files if k.startswith("group_")}
        return FaceModel(
            canonical=z["canonical"].astype(np.float64),
            mirror=z["mirror"].copy(),
            triangles=z["triangles"].copy(),
            groups=groups,
        )
