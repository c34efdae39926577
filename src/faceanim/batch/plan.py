"""The list of jobs of a batch: every portrait × every driver (folders or files), or the pairs of a CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceanim.errors import FaceAnimError, MediaError
from faceanim.media.kinds import is_audio_path, is_image_path, is_video_path

TEMPLATE_PREFIX = "template:"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchItem:
    source: str
    driving: str  # a file path or ``template:NAME``
    output: str


def _inputs(entries: Sequence[str], what: str, drivers: bool) -> list[str]:
    """Expand folders into their media files (sorted); keep files and ``template:`` names as given."""
    found: list[str] = []
    for entry in entries:
        if drivers and entry.startswith(TEMPLATE_PREFIX):
            found.append(entry)
            continue
        p = Path(entry)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and (
                is_image_path(f) or (drivers and (is_video_path(f) or is_audio_path(f) or f.suffix.lower() == ".npz"))))
            if not files:
                raise MediaError(f"no {what} found in the folder", path=p)
            found += [str(f) for f in files]
        elif p.is_file():
            found.append(str(p))
        else:
            raise MediaError("no such file or folder", path=p)
    return found


def _stem(driving: str) -> str:
    if driving.startswith(TEMPLATE_PREFIX):
        return "template-" + driving[len(TEMPLATE_PREFIX):]
    return Path(driving).stem


def output_name(source: str, driving: str) -> str:
    """``<portrait>__<driver>.mp4`` (``.png`` for a driving image), with only safe characters."""
    suffix = ".png" if not driving.startswith(TEMPLATE_PREFIX) and is_image_path(driving) else ".mp4"
    name = f"{_UNSAFE.sub('_', Path(source).stem)}__{_UNSAFE.sub('_', _stem(driving))}"
    return name + suffix


def _check_unique(items: list[BatchItem]) -> list[BatchItem]:
    seen: dict[str, BatchItem] = {}
    for item in items:
        if item.output in seen:
            other = seen[item.output]
            raise FaceAnimError(f"two jobs would write the same output ({other.source} × {other.driving} and "
                                f"{item.source} × {item.driving}); give the files distinct names or use a CSV "
                                "with an output column", path=item.output)
        seen[item.output] = item
    return items


def plan_grid(sources: Sequence[str], drivers: Sequence[str], out_dir: str | Path) -> list[BatchItem]:
    """Every portrait × every driver; folders expand to the media files inside them."""
    out = Path(out_dir)
    portraits = _inputs(sources, "portraits", drivers=False)
    driving = _inputs(drivers, "drivers", drivers=True)
    return _check_unique([BatchItem(s, d, str(out / output_name(s, d))) for s in portraits for d in driving])


def _safe_output(name: str, csv_path: Path, line: int) -> str:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts or not p.name:
        raise FaceAnimError(f"line {line}: output must be a relative name inside the output folder, got {name!r}",
                            path=csv_path)
    return name


def plan_csv(csv_path: str | Path, out_dir: str | Path) -> list[BatchItem]:
    """Pairs from a CSV with a ``source,driving`` header (and an optional ``output`` column, relative to
    ``out_dir``). Relative input paths are taken from the CSV's folder."""
    path = Path(csv_path)
    if not path.is_file():
        raise MediaError("no such file", path=path)
    base, out = path.parent, Path(out_dir)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise MediaError(f"cannot read the CSV ({e})", path=path) from None
    if "source" not in header or "driving" not in header:
        raise MediaError("the CSV needs a header with source and driving columns (output is optional)", path=path)
    if not rows:
        raise MediaError("the CSV has no rows", path=path)
    items = []
    for line, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        src, drv = row.get("source", ""), row.get("driving", "")
        if not src or not drv:
            raise MediaError(f"line {line}: source and driving are both required", path=path)
        src = str(base / src) if not Path(src).is_absolute() else src
        if not drv.startswith(TEMPLATE_PREFIX) and not Path(drv).is_absolute():
            drv = str(base / drv)
        name = _safe_output(row["output"], path, line) if row.get("output") else output_name(src, drv)
        items.append(BatchItem(src, drv, str(out / name)))
    return _check_unique(items)
