"""``faceanim train`` for the MobilePortrait renderer: same-identity pairs, GAN + pixel + facial-knowledge losses.

One process, or several under ``torchrun`` (DDP: gloo on CPU, NCCL on GPU). bf16 autocast on CPU (AMX),
fp16/bf16 autocast on GPU. Checkpoints (weights + optimizer moments, safetensors only) every few minutes,
CSV logs, periodic validation on held-out identities with the eval harness's metrics, a loss-curve PNG,
seeded sampling, resume from the run folder or from shipped weights.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from faceanim.errors import FaceAnimError, MediaError
from faceanim.eval import metrics
from faceanim.models import create_model
from faceanim.models.mobileportrait.config import LIP_INDICES
from faceanim.models.mobileportrait.discriminator import PatchDiscriminator
from faceanim.models.mobileportrait.model import MobilePortrait, landmark_mask
from faceanim.train.checkpoint import load_optimizer, load_tensors, optimizer_tensors, save_tensors
from faceanim.train.renderer_data import PairCache, collate

MOUTH_BOX_SCALE = 1.5  # as the eval harness


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    mouth: float = 4.0  # extra L1 weight inside the mouth box
    pyramid: float = 1.0  # L1 at 1/2 and 1/4 resolution
    ssim: float = 0.5
    laplacian: float = 0.0  # L1 of the Laplacians (edges): pixel losses alone blur
    detail: float = 0.0  # L1 of the local Laplacian energies: penalises blur without needing aligned edges
    warp: float = 0.1  # the warped source alone against the ground truth (trains the motion)
    adv: float = 0.05
    feature_matching: float = 1.0
    fk: float = 0.5  # facial keypoints reconstructed from the mixed-keypoint features
    equivariance: float = 0.5  # neural keypoints under a random affine
    masks: float = 0.5  # driving foreground and landmark masks (training-only heads)
    adv_start: int = 100  # steps before the adversarial terms reach the generator


@dataclass(frozen=True)
class TrainConfig:
    task: str = "renderer"
    model: str = "mobileportrait_cpu"
    overrides: dict = field(default_factory=dict)
    cache: str = "runs/cache"
    run_dir: str = "runs/mobileportrait_cpu"
    init: str | None = None  # weights to start from; with --resume also its optimizer state (<stem>.optim.*)
    batch_size: int = 8
    patch: int = 128  # synthesis is trained on patches of the 256 crop (motion sees the whole crop)
    mouth_patch_prob: float = 0.6
    augment: bool = True  # colour jitter (the same on every image of a pair)
    lr: float = 2e-4
    lr_d: float = 2e-4
    warmup: int = 50
    lr_decay_to: float = 1.0  # the rate falls linearly over this session's max_minutes to lr × lr_decay_to
    ema: float = 0.0  # >0: validate and ship an exponential moving average of the generator (GANs oscillate)
    max_steps: int = 100_000
    max_minutes: float = 70.0  # this session's training budget
    ckpt_minutes: float = 10.0
    val_minutes: float = 10.0
    val_pairs: int = 48
    log_every: int = 10
    seed: int = 0
    bf16: bool = True
    threads: int = 2
    losses: LossWeights = field(default_factory=LossWeights)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MediaError(f"not a readable JSON config ({exc})", path=path) from exc
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names - {"comment"}
        if unknown:
            raise FaceAnimError(f"unknown config keys: {', '.join(sorted(unknown))}", path=path)
        data.pop("comment", None)
        losses = data.pop("losses", {})
        lnames = {f.name for f in fields(LossWeights)}
        if set(losses) - lnames:
            raise FaceAnimError(f"unknown loss keys: {', '.join(sorted(set(losses) - lnames))}", path=path)
        return cls(**data, losses=LossWeights(**losses))


# ------------------------------------------------------------------------------------------------ losses


def ssim_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - SSIM with a 7×7 box window (images in [0, 1])."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.avg_pool2d(a, 7, 1, 3), F.avg_pool2d(b, 7, 1, 3)
    var_a = F.avg_pool2d(a * a, 7, 1, 3) - mu_a**2
    var_b = F.avg_pool2d(b * b, 7, 1, 3) - mu_b**2
    cov = F.avg_pool2d(a * b, 7, 1, 3) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1.0 - s.mean()


_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """The 3×3 Laplacian of the grey image (the eval harness's sharpness is its variance)."""
    grey = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return F.conv2d(grey, _LAPLACE.to(x), padding=1)


def detail_energy(x: torch.Tensor, window: int = 8) -> torch.Tensor:
    """Local RMS of the Laplacian over ``window``² cells: how much fine detail each cell holds.

    Unlike an L1 of the Laplacians, matching these energies does not require the output's edges to sit exactly
    where the ground truth's are, so it penalises the blur an L1-trained network settles on where the
    alignment is uncertain (the open mouth) without rewarding it for erasing detail."""
    return (F.avg_pool2d(laplacian(x) ** 2, window) + 1e-6).sqrt()


def random_affine(n: int, rng: np.random.Generator) -> torch.Tensor:
    """(n, 2, 3) small random similarity transforms in normalised coordinates."""
    ang = rng.uniform(-0.2, 0.2, n)
    sc = rng.uniform(0.9, 1.1, n)
    t = rng.uniform(-0.1, 0.1, (n, 2))
    c, s = np.cos(ang) * sc, np.sin(ang) * sc
    return torch.tensor(np.stack([np.stack([c, -s, t[:, 0]], 1), np.stack([s, c, t[:, 1]], 1)], 1), dtype=torch.float32)


def choose_patch(mouth: torch.Tensor, size: int, patch: int, rng: np.random.Generator, mouth_prob: float
                 ) -> tuple[int, int, int]:
    """A (y0, x0, patch) window on a 16-pixel lattice: around the batch's mouths, or anywhere on the face."""
    if patch >= size:
        return 0, 0, size
    if rng.random() < mouth_prob:
        c = mouth.float().mean(0)
        cx, cy = float(c[0] + c[2]) / 2, float(c[1] + c[3]) / 2
    else:
        cx, cy = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.75) * size
    cx += rng.uniform(-0.15, 0.15) * patch
    cy += rng.uniform(-0.15, 0.15) * patch

    def snap(v: float) -> int:
        return int(np.clip(round((v - patch / 2) / 16) * 16, 0, size - patch))

    return snap(cy), snap(cx), patch


def mouth_weight(mouth: torch.Tensor, size: int, window: tuple[int, int, int]) -> torch.Tensor:
    """(B, 1, p, p) indicator of each sample's mouth box inside the patch."""
    y0, x0, p = window
    ys = torch.arange(y0, y0 + p).view(1, p, 1)
    xs = torch.arange(x0, x0 + p).view(1, 1, p)
    m = mouth.view(-1, 4, 1, 1)
    inside = (xs >= m[:, 0]) & (xs < m[:, 2]) & (ys >= m[:, 1]) & (ys < m[:, 3])
    return inside.float().unsqueeze(1)


# ------------------------------------------------------------------------------------------- validation


def _uint8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1).permute(1, 2, 0).float().numpy() * 255.0 + 0.5).astype(np.uint8)


def validation_refs(val: PairCache, count: int) -> list:
    """``count`` held-out pairs spread evenly over the validation split (the same pairs every time)."""
    return [val.refs[i] for i in np.linspace(0, len(val) - 1, min(count, len(val))).astype(int)]


@torch.no_grad()
def score_pairs(model: MobilePortrait, val: PairCache, refs: list, bf16: bool = False) -> dict[str, list[float]]:
    """Per pair, the eval harness's image metrics for the model and for its analytic base (``model_*``,
    ``analytic_*``), and how far the model moved from that base (``moved_from_analytic``, grey levels)."""
    was_training = model.training
    model.eval()
    rows: dict[str, list[float]] = {}
    for ref in refs:
        b = collate([val.sample(ref)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b)
        pred, base, gt = _uint8(out["image"][0]), _uint8(b["base"][0]), _uint8(b["gt"][0])
        valid = b["valid"][0, 0].numpy() > 0.5
        lips = val.arrays(ref.clip)["gt_lmk"][ref.source, ref.pair][LIP_INDICES].astype(np.float32)
        rs, cs = metrics.box_around(lips, MOUTH_BOX_SCALE, gt.shape)
        for name, img in (("model", pred), ("analytic", base)):
            vals = {
                "psnr": metrics.psnr(img, gt, mask=valid), "ssim": metrics.ssim(img, gt, mask=valid),
                "sharpness": metrics.sharpness_ratio(img, gt, mask=valid),
                "mouth_psnr": metrics.psnr(img[rs, cs], gt[rs, cs], mask=valid[rs, cs]),
                "mouth_ssim": metrics.ssim(img[rs, cs], gt[rs, cs], mask=valid[rs, cs]),
            }
            for k, v in vals.items():
                rows.setdefault(f"{name}_{k}", []).append(float(v))
        rows.setdefault("moved_from_analytic", []).append(
            float(np.abs(pred.astype(np.float32) - base.astype(np.float32))[valid].mean()))
    model.train(was_training)
    return rows


def validate(model: MobilePortrait, val: PairCache, refs: list, bf16: bool) -> dict[str, float]:
    """The eval harness's image metrics on held-out pairs, for the model and for its analytic base: means, and
    the median for sharpness (a ratio)."""
    rows = score_pairs(model, val, refs, bf16)
    rows.pop("moved_from_analytic")
    return {k: float(np.nanmedian(v) if k.endswith("sharpness") else np.nanmean(v)) for k, v in rows.items()}


# ------------------------------------------------------------------------------------------------ logs


class CsvLog:
    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        rows: list[dict] = []
        if path.exists():  # a resumed run: keep its rows, under the (possibly extended) columns
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames == columns:
                    return
                rows = list(reader)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c, "")) for c in self.columns])


def _fmt(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def plot_curves(run_dir: Path, out: Path) -> None:
    """Loss curves (train) and validation PSNR/mouth PSNR (model vs analytic) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def read(p: Path) -> dict[str, np.ndarray]:
        if not p.exists():
            return {}
        with open(p) as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            return {}
        return {k: np.array([float(r[k]) if r[k] not in ("", "nan") else np.nan for r in rows]) for k in rows[0]}

    tr, va = read(run_dir / "train_log.csv"), read(run_dir / "val_log.csv")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if tr:
        k = max(1, len(tr["step"]) // 200)
        smooth = np.ones(k) / k
        for name in ("l1", "mouth_l1", "ssim", "fm", "g_adv", "d"):
            if name in tr and np.isfinite(tr[name]).any():
                axes[0].plot(tr["step"][k - 1:], np.convolve(np.nan_to_num(tr[name]), smooth, "valid"), label=name)
        axes[0].set_yscale("log")
        axes[0].set_xlabel("step")
        axes[0].legend()
        axes[0].set_title("training losses")
    if va:
        for name, ax in (("psnr", axes[1]), ("mouth_psnr", axes[2])):
            ax.plot(va["step"], va[f"model_{name}"], "o-", label="mobileportrait")
            ax.plot(va["step"], va[f"analytic_{name}"], "--", label="analytic (its prior)")
            ax.set_xlabel("step")
            ax.set_title(f"validation {name} (held-out identities)")
            ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


# -------------------------------------------------------------------------------------------- the loop


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ddp() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def checkpoint_paths(weights: Path) -> tuple[Path, Path]:
    """(weights, optimizer state) file pair: ``x.safetensors`` and ``x.optim.safetensors``."""
    return weights, weights.with_name(weights.name.replace(".safetensors", ".optim.safetensors"))


def save_checkpoint(path: Path, model: MobilePortrait, disc: PatchDiscriminator, opt_g, opt_d, state: dict,
                    cfg: TrainConfig, ema: MobilePortrait | None = None) -> None:
    """The weights file holds what ships (the moving average when there is one); the optimizer file holds
    what resuming needs (moments, the discriminator and, with a moving average, the raw generator)."""
    wpath, opath = checkpoint_paths(path)
    meta = {"model": cfg.model, "config": model.config.to_dict(), "state": state, "train_config": asdict(cfg),
            "ema": cfg.ema if ema is not None else 0.0}
    save_tensors(wpath, dict((ema or model).state_dict()), meta)
    tg, dg = optimizer_tensors(opt_g, "g")
    td, dd = optimizer_tensors(opt_d, "d")
    tensors = {**tg, **td, **{f"disc.{k}": v for k, v in disc.state_dict().items()}}
    if ema is not None:
        tensors.update({f"raw.{k}": v for k, v in model.state_dict().items()})
    save_tensors(opath, tensors, {"g": dg, "d": dd, "state": state})


@torch.no_grad()
def update_ema(ema: MobilePortrait, model: MobilePortrait, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def train(config_path: Path, resume: bool = False, progress: bool = True, max_steps: int | None = None) -> Path:
    """Train (or continue) a renderer; returns the path of the final weights in the run folder."""
    cfg = TrainConfig.load(config_path)
    if cfg.task != "renderer":
        raise FaceAnimError(f"task {cfg.task!r} is not the renderer", path=config_path)
    rank, world = _ddp()
    torch.set_num_threads(max(1, cfg.threads // world) if world > 1 else cfg.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = PairCache(Path(cfg.cache), "train")
    try:
        val: PairCache | None = PairCache(Path(cfg.cache), "val")
    except FaceAnimError:  # a cache without held-out identities (e.g. a smoke test): no validation
        val = None
    val_refs = [] if val is None else validation_refs(val, cfg.val_pairs)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.overrides).to(device)
    disc = PatchDiscriminator().to(device)
    opt_g = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999), weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999), weight_decay=0.0)
    state = {"step": 0, "seconds": 0.0, "samples": 0, "sessions": 0}
    last = run_dir / "last.safetensors"
    start_from = last if resume and last.exists() else (Path(cfg.init) if cfg.init else None)
    if start_from is not None:
        tensors, meta = load_tensors(start_from)
        model.load_state_dict(tensors)
        opath = checkpoint_paths(start_from)[1]
        if resume and opath.exists():
            otensors, ometa = load_tensors(opath)
            load_optimizer(opt_g, otensors, ometa["g"], "g")
            load_optimizer(opt_d, otensors, ometa["d"], "d")
            disc.load_state_dict({k[5:]: v for k, v in otensors.items() if k.startswith("disc.")})
            raw = {k[4:]: v for k, v in otensors.items() if k.startswith("raw.")}
            if raw:  # the moving average was loaded above; training continues from the raw generator
                model.load_state_dict(raw)
            for g in opt_d.param_groups:  # the config, not the checkpoint, sets the discriminator's rate
                g["lr"] = cfg.lr_d
            state.update(ometa.get("state", {}))
        elif resume:
            state.update(meta.get("state", {}))
    state["sessions"] = int(state.get("sessions", 0)) + 1
    ema_model = None
    if cfg.ema > 0:
        ema_model = copy.deepcopy(model)
        if start_from is not None:
            ema_model.load_state_dict(tensors)  # the weights file: the average when the run kept one
        ema_model.requires_grad_(False)
    rng = np.random.default_rng([cfg.seed, rank, int(state["step"])])
    torch.manual_seed(cfg.seed + 7919 * rank + int(state["step"]))

    net_g, net_d = model, disc
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net_g = DDP(model, find_unused_parameters=True)
        net_d = DDP(disc)
    is_main = rank == 0
    L = cfg.losses
    train_cols = ["step", "seconds", "samples", "lr", "total", "l1", "mouth_l1", "pyr", "ssim", "warp", "g_adv", "fm",
                  "fk", "equi", "masks", "d", "lap", "detail"]
    val_cols = ["step", "seconds"] + [f"{w}_{k}" for w in ("model", "analytic")
                                      for k in ("psnr", "ssim", "mouth_psnr", "mouth_ssim", "sharpness")]
    tlog = CsvLog(run_dir / "train_log.csv", train_cols) if is_main else None
    vlog = CsvLog(run_dir / "val_log.csv", val_cols) if is_main else None
    steps_total = cfg.max_steps if max_steps is None else max_steps  # --max-steps overrides the config
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
    started = time.perf_counter()
    base_seconds = float(state["seconds"])
    last_ckpt = last_val = started
    bar = tqdm(total=steps_total, initial=int(state["step"]), disable=not (progress and is_main), unit="step",
               desc="train")
    size = data.size
    acc: dict[str, list[float]] = {}
    model.train()
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        while state["step"] < steps_total:
            if (time.perf_counter() - started) / 60.0 > cfg.max_minutes:
                break
            step = int(state["step"])
            idx = rng.integers(0, len(data), cfg.batch_size)
            batch = {k: v.to(device) for k, v in
                     collate([data.sample(data.refs[i], rng if cfg.augment else None) for i in idx]).items()}
            window = choose_patch(batch["mouth"].cpu(), size, cfg.patch, rng, cfg.mouth_patch_prob)
            y0, x0, ps = window
            theta = random_affine(cfg.batch_size, rng).to(device)
            elapsed = (time.perf_counter() - started) / 60.0 / max(cfg.max_minutes, 1e-6)
            lr_scale = min(1.0, (step + 1) / max(cfg.warmup, 1)) * (1.0 - (1.0 - cfg.lr_decay_to) * min(elapsed, 1.0))
            for g in opt_g.param_groups:
                g["lr"] = cfg.lr * lr_scale
            with torch.autocast(**amp):
                out = net_g(batch, patch=window, theta=theta)
            pred = out["image"].float()
            gt = batch["gt"][..., y0:y0 + ps, x0:x0 + ps]
            valid = batch["valid"][..., y0:y0 + ps, x0:x0 + ps]
            mouth = mouth_weight(batch["mouth"].cpu(), size, window).to(device) * valid
            # --- discriminator
            with torch.autocast(**amp):
                real_logit, real_feats = net_d(gt)
                fake_logit, _ = net_d(pred.detach())
                loss_d = F.relu(1.0 - real_logit.float()).mean() + F.relu(1.0 + fake_logit.float()).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # --- generator
            err = (pred - gt).abs() * valid
            terms = {"l1": err.mean(), "mouth_l1": (err * mouth).sum() / mouth.sum().clamp(min=1.0) / 3.0}
            terms["pyr"] = sum(
                (F.avg_pool2d(pred, k) - F.avg_pool2d(gt, k)).abs().mul(F.avg_pool2d(valid, k)).mean() for k in (2, 4)
            )
            terms["ssim"] = ssim_loss(pred * valid, gt * valid)
            inner = -F.max_pool2d(-valid, 3, 1, 1)  # Laplacian windows wholly inside the frame
            terms["lap"] = ((laplacian(pred) - laplacian(gt)).abs() * inner).mean()
            cells = F.avg_pool2d(inner, 8) > 0.999
            terms["detail"] = ((detail_energy(pred) - detail_energy(gt)).abs() * cells).mean()
            warped = out["warped"][..., y0:y0 + ps, x0:x0 + ps].float()
            terms["warp"] = ((warped - gt).abs() * valid).mean()
            adv_on = step >= L.adv_start
            if adv_on:
                with torch.autocast(**amp):
                    g_logit, fake_feats = net_d(pred)
                terms["g_adv"] = -g_logit.float().mean()
                terms["fm"] = sum((f.float() - r.detach().float()).abs().mean()
                                  for f, r in zip(fake_feats, real_feats, strict=True)) / len(fake_feats)
            else:
                terms["g_adv"] = terms["fm"] = torch.zeros((), device=device)
            if model.config.keypoints != "nk":
                terms["fk"] = (out["fk_rec_s"].float() - batch["src_fk"]).abs().mean() + \
                    (out["fk_rec_d"].float() - batch["drv_fk"]).abs().mean()
            else:
                terms["fk"] = torch.zeros((), device=device)
            nk_back = torch.einsum("bij,bkj->bki", theta[:, :, :2], out["nk_t"].float()) + theta[:, None, :, 2]
            terms["equi"] = (nk_back - out["nk_s"].float()).abs().mean()
            lmk_gt = landmark_mask(batch["gt_fk"], model.grid64)
            terms["masks"] = (out["fg_pred"].float() - batch["gt_fg"]).abs().mean() + \
                (out["lmk_pred"].float() - lmk_gt).abs().mean()
            total = (L.l1 * terms["l1"] + L.mouth * terms["mouth_l1"] + L.pyramid * terms["pyr"]
                     + L.ssim * terms["ssim"] + L.laplacian * terms["lap"] + L.detail * terms["detail"]
                     + L.warp * terms["warp"] + L.fk * terms["fk"] + L.equivariance * terms["equi"]
                     + L.masks * terms["masks"])
            if adv_on:
                total = total + L.adv * terms["g_adv"] + L.feature_matching * terms["fm"]
            if not torch.isfinite(total):
                raise FaceAnimError(f"training diverged at step {step} (loss is not finite)", path=config_path)
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt_g.step()
            if ema_model is not None:
                update_ema(ema_model, model, cfg.ema)
            state["step"] = step + 1
            state["samples"] = int(state["samples"]) + cfg.batch_size * world
            state["seconds"] = base_seconds + time.perf_counter() - started
            for k, v in terms.items():
                acc.setdefault(k, []).append(float(v.detach()))
            acc.setdefault("total", []).append(float(total.detach()))
            acc.setdefault("d", []).append(float(loss_d.detach()))
            bar.update(1)
            if is_main and (step + 1) % cfg.log_every == 0:
                row = {k: float(np.mean(v)) for k, v in acc.items()}
                row.update(step=step + 1, seconds=round(state["seconds"], 1), samples=state["samples"],
                           lr=cfg.lr * lr_scale)
                tlog.write(row)
                bar.set_postfix(l1=f"{row['l1']:.4f}", mouth=f"{row['mouth_l1']:.4f}", d=f"{row['d']:.2f}")
                acc = {}
            now = time.perf_counter()
            if is_main and val is not None and (now - last_val) / 60.0 >= cfg.val_minutes:
                vlog.write({"step": step + 1, "seconds": round(state["seconds"], 1),
                            **validate(ema_model or model, val, val_refs, cfg.bf16)})
                last_val = time.perf_counter()
            if is_main and (now - last_ckpt) / 60.0 >= cfg.ckpt_minutes:
                save_checkpoint(last, model, disc, opt_g, opt_d, state, cfg, ema_model)
                plot_curves(run_dir, run_dir / "loss_curve.png")
                last_ckpt = time.perf_counter()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what was learned (checkpoint below), then stop
        pass
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if is_main and val is not None:
        vlog.write({"step": state["step"], "seconds": round(state["seconds"], 1),
                    **validate(ema_model or model, val, val_refs, cfg.bf16)})
    if is_main:
        save_checkpoint(last, model, disc, opt_g, opt_d, state, cfg, ema_model)
        plot_curves(run_dir, run_dir / "loss_curve.png")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return last
