"""Checkpoints in safe formats only: weights and optimizer moments as safetensors, scalars as JSON metadata.

No pickle anywhere: an optimizer's state dict is flattened to named tensors plus a JSON description.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from faceanim.errors import MediaError
from faceanim.media.atomic import atomic_output


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Atomically write named tensors with JSON-serialisable ``metadata`` (stored under the key ``json``)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_output(path) as tmp:
        save_file(flat, str(tmp), metadata={"json": json.dumps(metadata)})


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Named tensors and metadata of a safetensors file; MediaError if it is missing or not safetensors."""
    if not Path(path).is_file():
        raise MediaError("no such weights file", path=path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("json", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no __iter__)
    except (OSError, ValueError, json.JSONDecodeError, Exception) as exc:  # safetensors raises its own errors
        if isinstance(exc, MediaError):
            raise
        raise MediaError(f"not a readable safetensors file ({exc})", path=path) from exc
    return tensors, meta


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state dict into tensors and a JSON-able description."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], desc: dict, prefix: str) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        p, pid, name = key.split(".", 2)
        if p == prefix:
            state.setdefault(int(pid), {})[name] = value
    for pid, values in desc.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": desc["param_groups"]})
