"""Still-image reading (always RGB uint8, upright) and writing with text metadata."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from faceanim.errors import MediaError
from faceanim.media._common import check_input_file, reason
from faceanim.media.atomic import atomic_output

__all__ = ["read_image", "read_image_metadata", "resize_max_side", "write_image"]

_EXIF_IMAGE_DESCRIPTION = 0x010E
_EXIF_ORIENTATION = 0x0112
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe"})
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EXIF orientation -> PIL transposes (same table as ImageOps.exif_transpose).
_ORIENT_OPS: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def resize_max_side(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so the longer side is <= ``max_side``; returns (image, scale applied)."""
    if max_side < 1:
        raise ValueError("max_side must be >= 1")
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img, 1.0
    s = max_side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), s


def _on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite float RGB (0..255) with float alpha (0..1) over white; returns uint8."""
    a = alpha[..., None]
    return np.clip(rgb * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


def _png_is_16bit_color(p: Path) -> bool:
    """True for 48-bit RGB / 64-bit RGBA PNGs (Pillow would drop their low bytes)."""
    with open(p, "rb") as fh:
        head = fh.read(26)
    return head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 6)


def _read_16bit_png(p: Path, orientation: int) -> np.ndarray:
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3:
        raise MediaError("cannot decode 16-bit PNG", path=p)
    x = raw.astype(np.float32) / 257.0
    rgb = x[..., 2::-1]  # BGR(A) -> RGB
    alpha = x[..., 3] / 255.0 if raw.shape[2] == 4 else np.ones(raw.shape[:2], np.float32)
    pil = Image.fromarray(np.ascontiguousarray(_on_white(rgb, alpha)))
    for op in _ORIENT_OPS.get(orientation, ()):
        pil = pil.transpose(op)
    return np.asarray(pil)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> RGB uint8 (alpha on white, 16/32-bit and float scaled to 8-bit)."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        x = np.asarray(im, dtype=np.float32)
        if mode == "F" and x.size and float(np.nanmax(x)) <= 1.0:
            x = x * 255.0
        elif mode != "F" and x.size and float(x.max()) > 255.0:
            x = x / 257.0
        g = np.clip(np.nan_to_num(x) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        return _on_white(rgba[..., :3], rgba[..., 3] / 255.0)
    return np.asarray(im.convert("RGB"))  # RGB, L, 1, P, CMYK (incl. Adobe-inverted), YCbCr, LAB, HSV


def read_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Read an image as RGB uint8 HxWx3, upright per its EXIF orientation, optionally downscaled.

    Grayscale becomes 3 channels, transparency is composited on white, CMYK is converted, 16-bit images are
    scaled to 8-bit (48/64-bit PNGs via OpenCV). Raises MediaError for missing, corrupt or unsupported files.
    """
    p = check_input_file(path)
    try:
        with Image.open(p) as im:
            im.load()
            try:
                orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # a broken EXIF block must not make a good image unreadable
                orientation = 1
            if im.format == "PNG" and _png_is_16bit_color(p):
                rgb = _read_16bit_png(p, orientation)
            else:
                try:
                    upright = ImageOps.exif_transpose(im)
                except Exception:
                    upright = im
                rgb = _to_rgb(upright if upright is not None else im)
    except MediaError:
        raise
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...) on bad files
        raise MediaError(f"cannot read image, corrupt or unsupported ({reason(e)})", path=p) from e
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise MediaError(f"unsupported image layout {rgb.shape}", path=p)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if max_side is not None:
        rgb, _ = resize_max_side(rgb, max_side)
    return rgb


def write_image(path: str | Path, rgb: np.ndarray, metadata: dict[str, str] | None = None) -> Path:
    """Write RGB uint8 HxWx3 (or HxW gray) atomically; format from the suffix. Returns the path.

    Metadata: PNG -> one tEXt (iTXt if non-Latin-1) chunk per key; JPEG (quality 95) and WebP -> a JSON
    object in EXIF ImageDescription, and for JPEG also the same JSON as a COM comment (redundant on
    purpose: some tools drop one or the other). Other formats cannot carry metadata (MediaError).
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise MediaError(f"unsupported output image type {p.suffix!r}", path=p)
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"image must be RGB uint8 HxWx3 or HxW, got {arr.dtype} {arr.shape}")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    kwargs: dict[str, object] = {}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for k, v in meta.items():
            info.add_text(k, v)
        kwargs["pnginfo"] = info
    elif meta and fmt in ("JPEG", "WEBP"):
        text = json.dumps(meta, ensure_ascii=True, sort_keys=True)
        exif = Image.Exif()
        exif[_EXIF_IMAGE_DESCRIPTION] = text
        kwargs["exif"] = exif.tobytes()
        if fmt == "JPEG":
            kwargs["comment"] = text.encode("ascii")
    elif meta:
        raise MediaError(f"cannot store metadata in {p.suffix} files (use .png or .jpg)", path=p)
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = 95
    image = Image.fromarray(np.ascontiguousarray(arr))
    try:
        with atomic_output(p) as tmp:
            image.save(tmp, format=fmt, **kwargs)
    except OSError as e:
        raise MediaError(f"cannot write image ({reason(e)})", path=p) from e
    return p


def _json_dict(text: str | bytes | None) -> dict[str, str] | None:
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text.strip("\x00 "))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): str(v) for k, v in data.items()}


def read_image_metadata(path: str | Path) -> dict[str, str]:
    """Text metadata of an image: PNG text chunks; JPEG/WebP JSON from the COM comment or EXIF
    ImageDescription (plain non-JSON text is returned as ``comment`` / ``description``)."""
    p = check_input_file(path)
    try:
        with Image.open(p) as im:
            if im.format == "PNG":
                return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}
            out: dict[str, str] = {}
            comment = im.info.get("comment")
            try:
                desc = im.getexif().get(_EXIF_IMAGE_DESCRIPTION)
            except Exception:
                desc = None
            for key, raw in (("description", desc), ("comment", comment)):
                parsed = _json_dict(raw)
                if parsed is not None:
                    out.update(parsed)
                elif raw:
                    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                    out.setdefault(key, text.strip("\x00 "))
            return out
    except Exception as e:
        raise MediaError(f"cannot read image metadata, corrupt or unsupported ({reason(e)})", path=p) from e
