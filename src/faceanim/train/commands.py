"""CLI commands of the training stage: ``prepare-data``, ``train`` and ``export`` (registered by ``cli.py``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceanim.errors import FaceAnimError, MediaError

PREPARE_EXAMPLES = """examples:
  faceanim prepare-data ../shared/data/driving ../shared/data/talking -o runs/cache
  faceanim prepare-data ../shared/data/talking -o runs/talk_cache --kind talking
"""
TRAIN_EXAMPLES = """examples:
  faceanim train --config configs/mobileportrait_cpu.json
  faceanim train --config configs/mobileportrait_cpu.json --resume
  torchrun --nproc-per-node 2 -m faceanim train --config configs/mobileportrait_cpu.json   # DDP
"""
EXPORT_EXAMPLES = """examples:
  faceanim export --weights weights/mobileportrait_cpu.safetensors -o out/mobileportrait_cpu.onnx
"""


def cmd_prepare_data(args: argparse.Namespace) -> int:
    inputs = [Path(p) for p in args.inputs]
    output = Path(args.output)
    if args.kind == "talking":
        try:
            from faceanim.train.talking_data import prepare_talking_cache
        except ModuleNotFoundError as exc:
            raise FaceAnimError("talking data preparation is not available in this build") from exc
        prepare_talking_cache(inputs, output, args.progress)
        print(f"wrote {output}")
        return 0
    from faceanim.train.data import PrepareConfig, prepare_video_cache

    cfg = PrepareConfig(frames=args.frames, sources=args.sources)
    index = prepare_video_cache(inputs, output, args.progress, cfg)
    pairs = sum(c["pairs"] * c["sources"] for c in index["clips"])
    print(f"wrote {output} ({len(index['clips'])} clips, {pairs} pairs, {len(index['skipped'])} skipped)")
    for s in index["skipped"]:
        print(f"  skipped {s['clip']}: {s['reason']}")
    return 0


def _read_task(config: Path) -> str:
    if not config.is_file():
        raise MediaError("no such config file", path=config)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MediaError(f"not a readable JSON config ({exc})", path=config) from exc
    if not isinstance(data, dict):
        raise MediaError("the config must be a JSON object", path=config)
    return str(data.get("task", "renderer"))


def cmd_train(args: argparse.Namespace) -> int:
    config = Path(args.config)
    task = _read_task(config)
    if task == "audio2motion":
        try:
            from faceanim.train.audio2motion_trainer import train as train_a2m
        except ModuleNotFoundError as exc:
            raise FaceAnimError("audio2motion training is not available in this build") from exc
        out = train_a2m(config, args.resume, args.progress)
    elif task == "renderer":
        from faceanim.train.renderer_trainer import train as train_renderer

        out = train_renderer(config, args.resume, args.progress, max_steps=args.max_steps)
    else:
        raise FaceAnimError(f"unknown task {task!r} (expected 'renderer' or 'audio2motion')", path=config)
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from faceanim.train.export import export_onnx

    out = export_onnx(Path(args.weights), Path(args.output), check=not args.no_check)
    print(f"wrote {out}")
    return 0


def register(add, renderers) -> None:
    p = add("prepare-data", "precompute a training cache (crops, landmarks, masks, analytic prior) from videos",
            PREPARE_EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE", help="video files or folders of videos")
    p.add_argument("-o", "--output", required=True, metavar="CACHE", help="cache folder to write")
    p.add_argument("--kind", choices=("video", "talking"), default="video",
                   help="video: renderer pairs; talking: audio + motion for the speech stage")
    p.add_argument("--frames", type=int, default=40, help="driving frames sampled per clip")
    p.add_argument("--sources", type=int, default=2, help="source frames per clip")
    p.set_defaults(func=cmd_prepare_data)

    p = add("train", "train a network from a JSON config (renderer or audio2motion)", TRAIN_EXAMPLES)
    p.add_argument("--config", required=True, metavar="CONFIG", help="JSON training config")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's (or init's) checkpoint")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides config)")
    p.set_defaults(func=cmd_train)

    p = add("export", "export the MobilePortrait per-frame networks to ONNX (with a parity check)", EXPORT_EXAMPLES)
    p.add_argument("--weights", required=True, help="a .safetensors file written by training")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    p.set_defaults(func=cmd_export)
