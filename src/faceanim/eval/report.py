"""Report writers: strict JSON, markdown tables and contact-sheet images, all written atomically.

Every file goes through ``faceanim.media.atomic`` (temp file beside the target, then a rename), so an interrupted
evaluation never leaves a truncated report that a later step would happily parse.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from faceanim.media.atomic import atomic_output

__all__ = ["contact_sheet", "markdown_table", "read_json", "save_png", "to_jsonable", "write_json"]

_POS_INF = "Infinity"
_NEG_INF = "-Infinity"


# ----------------------------------------------------------------------------------------------- JSON


def _float(x: float) -> float | str | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        return _POS_INF if x > 0 else _NEG_INF
    return x


def to_jsonable(obj: Any) -> Any:
    """Convert to plain JSON types: numpy scalars/arrays → Python, tuples/sets → lists, paths → str.

    Non-finite floats: NaN → ``null`` and ±inf → ``"Infinity"`` / ``"-Infinity"``, so the file is strict
    JSON (readable by ``jq`` and browsers) while ``read_json`` can restore the values.
    """
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented strict JSON atomically (NaN → null, ±inf → "Infinity"/"-Infinity")."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _restore(obj: Any) -> Any:
    if obj is None:
        return float("nan")
    if obj == _POS_INF:
        return float("inf")
    if obj == _NEG_INF:
        return float("-inf")
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a ``write_json`` file, mapping null → nan and "Infinity"/"-Infinity" back to ±inf."""
    with open(path, encoding="utf-8") as f:
        return _restore(json.load(f))


# ------------------------------------------------------------------------------------------- markdown


def _cell(v: Any, float_fmt: str) -> str:
    if v is None:
        return ""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return float_fmt.format(v)
    return str(v).replace("|", r"\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]], columns: list[str], float_fmt: str = "{:.3f}") -> str:
    """GitHub markdown table of ``rows`` over ``columns``; floats use ``float_fmt``, missing = blank."""
    lines = [
        "| " + " | ".join(_cell(c, float_fmt) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r.get(c), float_fmt) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- images


def _as_rgb_u8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        f = a.astype(np.float64)
        if np.issubdtype(a.dtype, np.floating) and np.nanmax(f, initial=0.0) <= 1.0:
            f = f * 255.0
        a = np.clip(np.nan_to_num(f), 0, 255).round().astype(np.uint8)
    return a


def _letterbox(img: np.ndarray, tile: int) -> np.ndarray:
    """Resize to fit ``tile``×``tile`` keeping aspect, centred on black."""
    a = _as_rgb_u8(img)
    h, w = a.shape[:2]
    s = tile / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(np.ascontiguousarray(a), (nw, nh), interpolation=interp)
    out = np.zeros((tile, tile, 3), np.uint8)
    y0, x0 = (tile - nh) // 2, (tile - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = r
    return out


def _draw_label(bar: np.ndarray, text: str) -> None:
    """Draw ``text`` centred in ``bar`` (in place), shrinking the font to fit the width."""
    if not text:
        return
    h, w = bar.shape[:2]
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = h / 40.0
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if tw > w - 4:
        scale *= (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    org = (max(2, (w - tw) // 2), (h + th) // 2)
    cv2.putText(bar, text, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def contact_sheet(
    rows: list[list[np.ndarray | None]],
    labels: list[str],
    tile: int = 160,
    *,
    label_height: int = 24,
) -> np.ndarray:
    """Grid image for eyeballing results: one row per sample, e.g. [source, driving, output, ground truth].

    Each image is letterboxed to ``tile``×``tile``; short rows and ``None`` cells are black.  Column
    ``labels`` are drawn in a ``label_height`` bar on top (no bar if ``labels`` is empty).  Returns RGB
    uint8 of shape ``(label_height + len(rows) * tile, n_cols * tile, 3)``.
    """
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    n_cols = max([len(r) for r in rows] + [len(labels), 1])
    head = label_height if labels else 0
    sheet = np.zeros((head + len(rows) * tile, n_cols * tile, 3), np.uint8)
    if head:
        sheet[:head] = 40
        for j, text in enumerate(labels):
            _draw_label(sheet[:head, j * tile : (j + 1) * tile], str(text))
    for i, row in enumerate(rows):
        y = head + i * tile
        for j, img in enumerate(row):
            if img is not None:
                sheet[y : y + tile, j * tile : (j + 1) * tile] = _letterbox(img, tile)
    return sheet


def save_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Save an RGB (or grayscale) image as PNG atomically; converts RGB → BGR for OpenCV."""
    a = _as_rgb_u8(rgb)
    bgr = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), bgr):
            raise OSError(f"could not write PNG {path}")
