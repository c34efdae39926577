"""Pure drawing helpers for diagnostics (``faceanim inspect``): RGB uint8 in, annotated RGB uint8 out.

Every function returns a new image and leaves its input untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from faceanim.face.pose import HeadPose

Color = tuple[int, int, int]

IRIS_POINTS = range(468, 478)
AXIS_COLORS: tuple[Color, Color, Color] = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # x red, y green, z blue


def _thickness(img: np.ndarray) -> int:
    return max(1, round(max(img.shape[:2]) / 400))


def _pt(p: Sequence[float]) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def draw_landmarks(
    img: np.ndarray,
    landmarks: np.ndarray,
    color: Color = (0, 255, 0),
    radius: int = 1,
    iris_color: Color = (255, 255, 0),
) -> np.ndarray:
    """Dots at every landmark (x, y in pixels); the ten iris points (468–477) larger and in ``iris_color``."""
    out = img.copy()
    pts = np.asarray(landmarks, np.float64)[:, :2]
    finite = np.isfinite(pts).all(1)
    for i, p in enumerate(pts):
        if not finite[i] or i in IRIS_POINTS:
            continue
        cv2.circle(out, _pt(p), radius, color, -1, cv2.LINE_AA)
    for i in IRIS_POINTS:
        if i < len(pts) and finite[i]:
            cv2.circle(out, _pt(pts[i]), radius + 1, iris_color, -1, cv2.LINE_AA)
    return out


def draw_pose_axes(img: np.ndarray, pose: HeadPose, length: float = 0.8, thickness: int | None = None) -> np.ndarray:
    """The head's canonical x/y/z axes (red/green/blue), ``length`` in face-model units, from the pose origin."""
    out = img.copy()
    t = thickness or _thickness(img) + 1
    origin = np.asarray(pose.translation, np.float64)[:2]
    if not np.isfinite(origin).all():
        return out
    for i, color in enumerate(AXIS_COLORS):
        end = origin + pose.scale * length * np.asarray(pose.rotation, np.float64)[:2, i]
        if np.isfinite(end).all():
            cv2.arrowedLine(out, _pt(origin), _pt(end), color, t, cv2.LINE_AA, tipLength=0.15)
    return out


def draw_mask_overlay(
    img: np.ndarray, mask: np.ndarray, color: Color = (0, 120, 255), alpha: float = 0.35
) -> np.ndarray:
    """Tint the pixels of a [0, 1] (or uint8) mask with ``color`` at opacity ``alpha·mask``."""
    m = np.asarray(mask)
    m = m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)
    if m.shape[:2] != img.shape[:2]:
        m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    a = (np.clip(m, 0.0, 1.0) * float(alpha))[..., None]
    out = img.astype(np.float32) * (1.0 - a) + np.asarray(color, np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def draw_text(
    img: np.ndarray,
    lines: str | Sequence[str],
    org: tuple[int, int] = (8, 8),
    color: Color = (255, 255, 255),
    background: Color = (0, 0, 0),
    scale: float | None = None,
    bg_alpha: float = 0.6,
) -> np.ndarray:
    """Text lines starting at top-left ``org`` on a translucent dark box."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = img.copy()
    if not lines:
        return out
    scale = scale or max(0.4, max(img.shape[:2]) / 1000)
    t = max(1, round(scale * 1.5))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(s, font, scale, t) for s in lines]
    line_h = max(h + b for (_, h), b in sizes) + max(2, round(4 * scale))
    width = max(w for (w, _), _ in sizes)
    pad = max(3, round(6 * scale))
    x0, y0 = org
    x1, y1 = min(img.shape[1], x0 + width + 2 * pad), min(img.shape[0], y0 + line_h * len(lines) + 2 * pad)
    x0, y0 = max(0, x0), max(0, y0)
    if x1 > x0 and y1 > y0:
        box = out[y0:y1, x0:x1].astype(np.float32)
        box = box * (1 - bg_alpha) + np.asarray(background, np.float32) * bg_alpha
        out[y0:y1, x0:x1] = np.clip(box + 0.5, 0, 255).astype(np.uint8)
    for k, s in enumerate(lines):
        baseline_y = org[1] + pad + (k + 1) * line_h - sizes[k][1] - max(1, round(2 * scale))
        cv2.putText(out, s, (org[0] + pad, baseline_y), font, scale, color, t, cv2.LINE_AA)
    return out


def draw_banner(img: np.ndarray, text: str, color: Color = (200, 0, 0)) -> np.ndarray:
    """A full-width coloured band with centred text across the top of the image."""
    out = img.copy()
    h, w = img.shape[:2]
    scale = max(0.5, w / 700)
    t = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, t)
    band = min(h, th + base + round(16 * scale))
    out[:band] = color
    cv2.putText(out, text, ((w - tw) // 2, (band + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), t,
                cv2.LINE_AA)
    return out


def draw_face_box(
    img: np.ndarray, box: Sequence[float], color: Color = (255, 200, 0), label: str | None = None
) -> np.ndarray:
    """Rectangle (x0, y0, x1, y1) with an optional label above it."""
    out = img.copy()
    x0, y0, x1, y1 = (round(float(v)) for v in box[:4])
    cv2.rectangle(out, (x0, y0), (x1, y1), color, _thickness(img), cv2.LINE_AA)
    if label:
        scale = max(0.4, max(img.shape[:2]) / 1200)
        t = max(1, round(scale * 1.5))
        (_, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, t)
        y = y0 - base - 2 if y0 - th - base - 2 >= 0 else y0 + th + 2
        cv2.putText(out, label, (x0 + 2, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, t, cv2.LINE_AA)
    return out
