"""Find and load the audio-to-motion weights (safetensors + config metadata; never pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from faceanim.errors import FaceAnimError

__all__ = ["WEIGHTS_ENV", "default_weights_path", "load_audio2motion"]

WEIGHTS_ENV = "FACEANIM_AUDIO2MOTION"
FORMAT = "faceanim-audio2motion-1"


def default_weights_path() -> Path:
    """``$FACEANIM_AUDIO2MOTION``, else ``weights/audio2motion.safetensors`` of the source checkout."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "weights" / "audio2motion.safetensors"


def load_audio2motion(path: str | Path | None = None):
    """The trained :class:`~faceanim.models.audio2motion.Audio2Motion` in eval mode (float32, CPU).

    Raises FaceAnimError naming the file if it is missing, not safetensors, or not audio2motion weights.
    """
    try:
        import torch
        from safetensors import SafetensorError, safe_open
    except ImportError as e:  # pragma: no cover - depends on the install
        raise FaceAnimError("speech needs torch and safetensors: pip install 'faceanim[speech]'") from e
    from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig

    p = Path(path) if path is not None else default_weights_path()
    if not p.is_file():
        raise FaceAnimError("audio-to-motion weights not found (train them or pass --weights)", path=p)
    try:
        with safe_open(str(p), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise FaceAnimError("not faceanim audio-to-motion weights", path=p)
            config = Audio2MotionConfig(**json.loads(meta["config"]))
            pose_gain = json.loads(meta.get("pose_gain", "null"))
            state = {k: f.get_tensor(k).to(torch.float32) for k in f.keys()}  # noqa: SIM118 (safe_open API)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise FaceAnimError(f"cannot read weights ({e})", path=p) from e
    model = Audio2Motion(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FaceAnimError(f"weights do not match the network ({len(missing)} missing, {len(unexpected)} "
                            "unexpected tensors)", path=p)
    model.pose_gain = None if pose_gain is None else np.asarray(pose_gain, np.float32)  # head-motion calibration
    return model.eval()
