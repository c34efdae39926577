"""Motion templates: a versioned, pickle-free ``.npz`` of per-frame motion, and bundled procedural ones.

A template carries motion without the driver's face (share a performance without sharing a face).

Format (``format == "faceanim-motion"``, ``version == 1``), arrays over T frames:
``rotation`` (T, 3, 3), ``translation`` (T, 3), ``scale`` (T,), ``expression`` (T, 478, 3) float32,
``eye_open`` (T, 2), ``lip_open`` (T,), ``gaze`` (T, 4), ``valid`` (T,) bool, ``fps`` (2,) int64 as
numerator/denominator, ``meta`` a JSON string. Translation and scale are in the performer's pixels;
only their change relative to frame 0 is used by relative transfer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceanim.errors import MediaError
from faceanim.face.geometry import rotation_from_euler
from faceanim.face.model import MOUTH_CORNERS, N_LANDMARKS, load_face_model
from faceanim.face.ratios import eye_open_ratios, gaze_offsets, lip_open_ratio
from faceanim.motion.retarget import set_eye_open, set_lip_open
from faceanim.motion.types import Motion

FORMAT = "faceanim-motion"
VERSION = 1


@dataclass(frozen=True)
class MotionTemplate:
    motions: list[Motion]
    fps: Fraction = Fraction(25)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.motions)


def save_template(path: str | Path, template: MotionTemplate) -> Path:
    """Write a template atomically (temp file, then rename)."""
    from faceanim.media.atomic import atomic_output

    ms = template.motions
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION),
        "rotation": np.stack([m.rotation for m in ms]).astype(np.float32),
        "translation": np.stack([m.translation for m in ms]).astype(np.float32),
        "scale": np.array([m.scale for m in ms], np.float32),
        "expression": np.stack([m.expression for m in ms]).astype(np.float32),
        "eye_open": np.stack([m.eye_open for m in ms]).astype(np.float32),
        "lip_open": np.array([m.lip_open for m in ms], np.float32),
        "gaze": np.stack([m.gaze for m in ms]).astype(np.float32),
        "valid": np.array([m.valid for m in ms], bool),
        "fps": np.array([template.fps.numerator, template.fps.denominator], np.int64),
        "meta": np.array(json.dumps(template.meta)),
    }
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_template(path: str | Path) -> MotionTemplate:
    """Read a template; never unpickles (``allow_pickle=False``) and checks format and version."""
    path = Path(path)
    if not path.exists():
        raise MediaError("no such file", path=path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise MediaError(f"not a faceanim motion template (format {z['format']!s})", path=path)
            if int(z["version"]) > VERSION:
                raise MediaError(f"template version {int(z['version'])} is newer than supported {VERSION}", path=path)
            n = len(z["scale"])
            shapes = {"rotation": (n, 3, 3), "translation": (n, 3), "scale": (n,), "expression": (n, N_LANDMARKS, 3),
                      "eye_open": (n, 2), "lip_open": (n,), "gaze": (n, 4), "valid": (n,), "fps": (2,)}
            for key, shape in shapes.items():
                if z[key].shape != shape:
                    raise MediaError(f"motion template array {key!r} has shape {z[key].shape}, expected {shape}",
                                     path=path)
            if int(z["fps"][0]) <= 0 or int(z["fps"][1]) <= 0:
                raise MediaError("motion template has a non-positive frame rate", path=path)
            motions = [
                Motion(
                    rotation=z["rotation"][i].astype(np.float64),
                    translation=z["translation"][i].astype(np.float64),
                    scale=float(z["scale"][i]),
                    expression=z["expression"][i].astype(np.float64),
                    eye_open=z["eye_open"][i].astype(np.float64),
                    lip_open=float(z["lip_open"][i]),
                    gaze=z["gaze"][i].astype(np.float64),
                    valid=bool(z["valid"][i]),
                )
                for i in range(n)
            ]
            fps = Fraction(int(z["fps"][0]), int(z["fps"][1]))
            meta = json.loads(str(z["meta"]))
    except MediaError:
        raise
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
        raise MediaError(f"cannot read motion template ({exc.__class__.__name__}: {exc})", path=path) from None
    if not motions:
        raise MediaError("motion template has no frames", path=path)
    return MotionTemplate(motions=motions, fps=fps, meta=meta)


def _smile(expression: np.ndarray, amount: float) -> np.ndarray:
    """Pull the mouth corners up and out (canonical units), with a smooth falloff around them."""
    can = load_face_model().canonical
    out = expression.copy()
    mouth_w = float(np.linalg.norm(can[MOUTH_CORNERS[0]] - can[MOUTH_CORNERS[1]]))
    for corner, side in ((MOUTH_CORNERS[0], -1.0), (MOUTH_CORNERS[1], 1.0)):
        d = np.linalg.norm(can[:, :2] - can[corner, :2], axis=1)
        w = np.exp(-((d / (0.45 * mouth_w)) ** 2))[:, None]
        out += amount * w * np.array([side * 0.12, -0.10, 0.0]) * mouth_w
    return out


def _slide_silhouette(expression: np.ndarray, yaw: float, amount: float = 0.6) -> np.ndarray:
    """Keep the face-oval landmarks on the visible contour of a turned head, as a tracker reports them.

    Landmarks from a real driver slide around the head's outline as it turns, and relative transfer carries
    that along; synthetic motion has to add it, or the near cheek looks cut off at large yaw.
    """
    oval = load_face_model().group("face_oval")
    out = expression.copy()
    centre = expression[:468].mean(0)
    counter = rotation_from_euler(-amount * yaw, 0.0, 0.0)
    out[oval] = (expression[oval] - centre) @ counter.T + centre
    return out


def _motion(expression: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> Motion:
    return Motion(
        rotation=rotation_from_euler(yaw, pitch, roll),
        translation=np.zeros(3),
        scale=1.0,
        expression=expression,
        eye_open=eye_open_ratios(expression),
        lip_open=float(lip_open_ratio(expression)),
        gaze=gaze_offsets(expression),
    )


def procedural_template(name: str, seconds: float = 3.0, fps: int = 25) -> MotionTemplate:
    """Bundled motions made from the canonical face: ``nod``, ``turn``, ``blink``, ``smile``, ``talk``, ``demo``."""
    base = load_face_model().canonical.copy()
    base = set_lip_open(base, 0.0)
    open_eye = float(eye_open_ratios(base).mean())
    n = round(seconds * fps)
    t = np.arange(n) / fps
    env = np.sin(np.pi * np.clip(t / seconds, 0, 1)) ** 2  # starts and ends neutral
    motions: list[Motion] = []
    for i in range(n):
        e, yaw, pitch, roll = base, 0.0, 0.0, 0.0
        if name in ("nod", "demo"):
            pitch = 12.0 * np.sin(2 * np.pi * t[i] / 1.5) * env[i]
        if name in ("turn", "demo"):
            yaw = 20.0 * np.sin(2 * np.pi * t[i] / seconds)
            roll = 4.0 * np.sin(2 * np.pi * t[i] / seconds)
        if name in ("smile", "demo"):
            e = _smile(e, float(env[i]))
        if name in ("talk", "demo"):
            syll = np.clip(np.sin(2 * np.pi * 3.2 * t[i]) * 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t[i]), 0, None)
            e = set_lip_open(e, 0.45 * syll * (env[i] if name == "demo" else 1.0))
        if name in ("blink", "demo"):
            phase = (t[i] % 1.5) / 0.25  # a blink every 1.5 s lasting 0.25 s
            closed = np.sin(np.pi * phase) if phase < 1.0 else 0.0
            level = open_eye * (1.0 - 0.95 * closed)
            e = set_eye_open(e, level, level)
        if name not in ("nod", "turn", "blink", "smile", "talk", "demo"):
            raise ValueError(f"unknown template {name!r}")
        if yaw:
            e = _slide_silhouette(e, yaw)
        motions.append(_motion(e, yaw, pitch, roll))
    return MotionTemplate(motions=motions, fps=Fraction(fps), meta={"name": name, "generator": "procedural"})


BUNDLED_TEMPLATES: Sequence[str] = ("nod", "turn", "blink", "smile", "talk", "demo")
