"""Shared argument handling for the benchmark scripts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_CLIP = DATA / "driving" / "liveportrait_d10.mp4"  # 512×512, 30 fps
DEFAULT_SOURCE = DATA / "portraits" / "liveportrait_s42.jpg"  # 512×512


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p


def emit(result: dict, path: Path | None) -> None:
    text = json.dumps(result, indent=2)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text)
