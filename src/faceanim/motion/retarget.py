"""Eyes and lip retargeting directly on explicit landmarks (LivePortrait §3.3, without a learned MLP).

Our keypoints are explicit, so "set the left eye to 0.1 open" is a small smooth displacement of the
lids (and, fading with distance, the skin around them) in canonical space, solved so that the measured
ratio hits the request. Closing pulls each side toward its partner on the other side; opening pushes
the sides apart vertically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from faceanim.face.model import (
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LEFT_IRIS_CENTER,
    LOWER_LIP,
    MOUTH_CORNERS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    RIGHT_IRIS_CENTER,
    UPPER_LIP,
    load_face_model,
)
from faceanim.face.ratios import eye_open_ratios, lip_open_ratio

_IRIS = np.arange(468, 478)
# A widely opened real eye (surprise) reaches a mean lid gap of ~0.9 iris diameters; beyond that white shows
# above and below the iris all around it (measured on the sample data's "surprised" clips: max 0.92).
EYE_GAP_PER_IRIS = 0.9
# No retargeted eye opens to more than this multiple of the source's own openness: the renderer can only
# stretch the lids it sees, not invent the eyeball they hide.
EYE_OPEN_GROWTH = 1.5


@dataclass(frozen=True)
class OpeningField:
    """How each landmark follows one opening (an eye or the mouth)."""

    weight: np.ndarray  # (N,) falloff in [0, 1]
    anchor: np.ndarray  # (N,) the contour point whose motion this landmark copies
    partner: np.ndarray  # (N,) the contour point across the opening from ``anchor``
    share: np.ndarray  # (N,) fraction of the gap this side closes (upper lid/lip moves more or less)
    sign: np.ndarray  # (N,) -1 on the upper side, +1 on the lower side (canonical y points down)


def _opening_field(can: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...], sigma: float,
                   upper_share: float, extra_lower: np.ndarray | None = None) -> OpeningField:
    n = len(can)
    weight, anchor, partner = np.zeros(n), np.zeros(n, int), np.zeros(n, int)
    share, sign = np.zeros(n), np.zeros(n)
    up, lo = np.array(upper), np.array(lower)
    centre_y = can[np.concatenate([up, lo]), 1].mean()
    for members, others, side_up in ((up, lo, True), (lo, up, False)):
        dx = np.abs(can[members, None, 0] - can[None, others, 0])
        pair = others[dx.argmin(1)]  # the point across the opening with the closest x
        d = np.linalg.norm(can[:, None, :2] - can[None, members, :2], axis=-1)
        near = d.argmin(1)
        w = np.exp(-((d.min(1) / sigma) ** 2))
        on_side = can[:, 1] < centre_y if side_up else can[:, 1] > centre_y
        w = np.where(on_side, w, 0.0)
        if not side_up and extra_lower is not None:
            w = np.maximum(w, np.where(on_side, extra_lower, 0.0))
        w[members] = 1.0
        sel = w > weight
        sel[members] = True
        weight[sel] = w[sel]
        anchor[sel] = members[near[sel]]
        partner[sel] = pair[near[sel]]
        share[sel] = upper_share if side_up else 1.0 - upper_share
        sign[sel] = -1.0 if side_up else 1.0
    weight[_IRIS] = 0.0
    return OpeningField(weight, anchor, partner, share, sign)


@lru_cache(maxsize=1)
def _fields() -> dict[str, OpeningField]:
    model = load_face_model()
    can = model.canonical
    eye_w = float(np.linalg.norm(can[LEFT_EYE_CORNERS[0]] - can[LEFT_EYE_CORNERS[1]]))
    mouth_w = float(np.linalg.norm(can[MOUTH_CORNERS[0]] - can[MOUTH_CORNERS[1]]))
    # the jaw follows the lower lip
    jaw = np.exp(-((np.linalg.norm(can[:, :2] - can[152, :2], axis=1) / (0.9 * mouth_w)) ** 2))
    return {
        "left_eye": _opening_field(can, LEFT_EYE_UPPER, LEFT_EYE_LOWER, 0.35 * eye_w, 0.8),
        "right_eye": _opening_field(can, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, 0.35 * eye_w, 0.8),
        "mouth": _opening_field(can, UPPER_LIP, LOWER_LIP, 0.6 * mouth_w, 0.3, extra_lower=jaw),
    }


def _direction(expr: np.ndarray, field: OpeningField, opening: bool) -> np.ndarray:
    """Unit step of the opening: apart vertically (opening) or toward the partners (closing)."""
    w = (field.weight * field.share)[:, None]
    if opening:
        out = np.zeros_like(expr)
        out[:, 1] = field.sign * field.weight * field.share
        return out
    return w * (expr[field.partner] - expr[field.anchor])


def _solve(expr: np.ndarray, measure: Callable[[np.ndarray], float], field: OpeningField,
           target: float) -> np.ndarray:
    current = measure(expr)
    if abs(current - target) < 1e-4:
        return expr
    step = _direction(expr, field, opening=target > current)

    def err(d: float) -> float:
        return measure(expr + d * step) - target

    # The ratio is close to linear in d: a few Illinois (regula falsi) steps on [0, d_max] suffice.
    lo, hi = 0.0, 1.0
    f_lo, f_hi = err(lo), err(hi)
    while target > current and f_hi < 0 and hi < 64:  # opening: widen the bracket until it holds the target
        lo, f_lo, hi = hi, f_hi, hi * 2
        f_hi = err(hi)
    if f_lo * f_hi > 0:  # unreachable (e.g. fully closed): take the closest end
        return expr + (lo if abs(f_lo) < abs(f_hi) else hi) * step
    side = 0
    d = lo
    for _ in range(12):
        d = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f = err(d)
        if abs(f) < 1e-4:
            break
        if f * f_hi > 0:
            hi, f_hi = d, f
            if side == -1:
                f_lo *= 0.5
            side = -1
        else:
            lo, f_lo = d, f
            if side == 1:
                f_hi *= 0.5
            side = 1
    return expr + d * step


def mouth_width(expression: np.ndarray) -> float:
    """Corner-to-corner mouth width (in the expression's units, x/y only)."""
    a, b = MOUTH_CORNERS
    return float(np.linalg.norm(expression[a, :2] - expression[b, :2]))


def mouth_weight() -> np.ndarray:
    """(478,) how much each landmark belongs to the mouth: 1 on the lips, fading over the cheeks and chin."""
    return _fields()["mouth"].weight


def iris_ratios(expression: np.ndarray) -> np.ndarray:
    """(left, right) iris diameter divided by eye width (~0.4 on real faces)."""
    out = []
    for centre, corners in ((LEFT_IRIS_CENTER, LEFT_EYE_CORNERS), (RIGHT_IRIS_CENTER, RIGHT_EYE_CORNERS)):
        ring = expression[centre + 1 : centre + 5, :2]  # mediapipe: right, top, left, bottom of the iris
        diameter = 0.5 * (np.linalg.norm(ring[0] - ring[2]) + np.linalg.norm(ring[1] - ring[3]))
        width = np.linalg.norm(expression[corners[0], :2] - expression[corners[1], :2])
        out.append(diameter / max(float(width), 1e-9))
    return np.array(out)


def max_eye_open(expression: np.ndarray, eye_open: np.ndarray) -> np.ndarray:
    """(left, right) widest plausible eye-open ratio of a face, from its own geometry.

    ``min(EYE_GAP_PER_IRIS × iris diameter / eye width, EYE_OPEN_GROWTH × its own openness)``, never below
    its own openness (its current look is always reachable).
    """
    own = np.maximum(np.asarray(eye_open, np.float64), 0.0)
    bound = np.minimum(EYE_GAP_PER_IRIS * iris_ratios(expression), EYE_OPEN_GROWTH * own)
    return np.maximum(bound, own)


def set_eye_open(expression: np.ndarray, left: float | None, right: float | None) -> np.ndarray:
    """Move the eyelids so the eye-open ratios become ``left``/``right`` (None keeps that eye)."""
    fields = _fields()
    out = expression
    for i, (name, target) in enumerate((("left_eye", left), ("right_eye", right))):
        if target is not None:
            out = _solve(out, lambda e, i=i: float(eye_open_ratios(e)[i]), fields[name], max(float(target), 0.0))
    return out


def set_lip_open(expression: np.ndarray, target: float) -> np.ndarray:
    """Move lips and jaw so the lip-open ratio becomes ``target`` (mostly the lower lip and jaw move)."""
    return _solve(expression, lambda e: float(lip_open_ratio(e)), _fields()["mouth"], max(float(target), 0.0))
