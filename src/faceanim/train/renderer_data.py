"""Same-identity training pairs from a ``prepare-data`` cache, as torch tensors (memory-mapped, bounded RAM)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceanim.errors import FaceAnimError
from faceanim.models.mobileportrait.config import FK_INDICES, LIP_INDICES
from faceanim.train.splits import is_validation

_ARRAYS = ("src", "src_fg", "src_bg", "src_lmk", "gt", "base", "flow", "drv_lmk", "gt_lmk", "gt_fg")


@dataclass(frozen=True)
class PairRef:
    clip: int
    source: int
    pair: int


class PairCache:
    """The clips of one cache, split by identity (``split``: ``train``, ``val`` or ``all``)."""

    def __init__(self, root: Path, split: str = "train", clips: list[str] | None = None) -> None:
        index_file = Path(root) / "index.json"
        if not index_file.is_file():
            raise FaceAnimError("not a training cache (no index.json; run `faceanim prepare-data`)", path=root)
        index = json.loads(index_file.read_text())
        entries = index["clips"]
        if clips is not None:
            entries = [e for e in entries if e["name"] in clips or e["key"] in clips]
        elif split != "all":
            want_val = split == "val"
            entries = [e for e in entries if is_validation(e["name"]) == want_val]
        if not entries:
            raise FaceAnimError(f"the cache has no {split} clips", path=root)
        self.root = Path(root)
        self.entries = entries
        self.size = int(index["config"]["size"])
        self._arrays: dict[int, dict[str, np.ndarray]] = {}
        self.refs = [PairRef(c, s, p) for c, e in enumerate(entries) for s in range(e["sources"])
                     for p in range(e["pairs"])]

    def arrays(self, clip: int) -> dict[str, np.ndarray]:
        if clip not in self._arrays:
            folder = self.root / "clips" / self.entries[clip]["key"]
            self._arrays[clip] = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in _ARRAYS}
        return self._arrays[clip]

    def __len__(self) -> int:
        return len(self.refs)

    def sample(self, ref: PairRef, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """One pair as float tensors (images in [0, 1], CHW; keypoints in [-1, 1]); ``rng`` enables augmentation."""
        a = self.arrays(ref.clip)
        s, p = ref.source, ref.pair
        scale = 2.0 / (self.size - 1)

        def img(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.array(x)).permute(2, 0, 1).float() / 255.0

        gt = img(a["gt"][s, p])
        out = {
            "src": img(a["src"][s]),
            "src_fg": torch.from_numpy(np.array(a["src_fg"][s])).float()[None] / 255.0,
            "src_bg": img(a["src_bg"][s]),
            "src_fk": torch.from_numpy(np.asarray(a["src_lmk"][s][FK_INDICES], np.float32) * scale - 1.0),
            "base": img(a["base"][s, p]),
            "prior_flow": torch.from_numpy(np.asarray(a["flow"][s, p], np.float32)),
            "drv_fk": torch.from_numpy(np.asarray(a["drv_lmk"][s, p][FK_INDICES], np.float32) * scale - 1.0),
            "gt": gt,
            "gt_fk": torch.from_numpy(np.asarray(a["gt_lmk"][s, p][FK_INDICES], np.float32) * scale - 1.0),
            "gt_fg": torch.from_numpy(np.array(a["gt_fg"][s, p])).float()[None] / 255.0,
            "valid": (gt.amax(0, keepdim=True) > 0.0).float(),  # crops are black beyond the frame: not scored
            "mouth": torch.from_numpy(mouth_box(np.asarray(a["gt_lmk"][s, p], np.float32), self.size)),
        }
        if rng is not None:  # colour augmentation, the same on every image of the pair
            gain = torch.from_numpy(rng.uniform(0.8, 1.2, 3).astype(np.float32))[:, None, None]
            offset = float(rng.uniform(-0.06, 0.06))
            for k in ("src", "src_bg", "base", "gt"):
                out[k] = (out[k] * gain + offset).clamp(0.0, 1.0)
        return out


def mouth_box(landmarks: np.ndarray, size: int, margin: float = 0.35) -> np.ndarray:
    """(x0, y0, x1, y1) int box around the outer lips, grown by ``margin`` of its larger side."""
    lips = landmarks[LIP_INDICES, :2]
    lo, hi = lips.min(0), lips.max(0)
    side = float((hi - lo).max())
    c = 0.5 * (lo + hi)
    half = 0.5 * side * (1.0 + 2.0 * margin)
    box = np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half])
    return np.clip(np.round(box), 0, size).astype(np.int64)


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
