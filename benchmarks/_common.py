"""Shared argument handling for the benchmark scripts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceanim.eval.data import data_folder

DATA = data_folder()  # $FACEANIM_DATA, else ../shared/data
DEFAULT_CLIP = DATA / "driving" / "liveportrait_d10.mp4"  # 512×512, 30 fps
DEFAULT_SOURCE = DATA / "portraits" / "liveportrait_s42.jpg"  # 512×512


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--frames", type=int, default=None, help="frames per configuration (default: the whole clip)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p


def emit(result: dict, path: Path | None) -> None:
    """Print the result as JSON and, if asked, write it (atomically) to ``path``."""
    from faceanim.eval.report import to_jsonable, write_json

    if path:
        write_json(path, result)
    print(json.dumps(to_jsonable(result), indent=2))
