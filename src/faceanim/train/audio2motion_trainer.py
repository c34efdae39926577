"""Train the audio-to-motion network on the talking-clip cache (``faceanim train --config
configs/audio2motion.json``): bounded time, seeded, CSV log, resumable checkpoints, ``torchrun`` for several
processes (gloo), and small safetensors weights at the end.

Model selection: with ``dev_identities`` the trainer holds those training identities out and, every
``eval_every`` steps, scores the network on them through the same generation path ``speak`` uses (LMD and LMD-v
relative to the source-held-still baseline); the best-scoring weights are exported, not the last ones. The
validation clips are only logged (``val_lmd``), never used to pick anything."""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from faceanim.errors import FaceAnimError
from faceanim.media.atomic import atomic_output
from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig, Discriminator, free_bits_kl
from faceanim.train.audio2motion_data import Batch, ClipTargets, load_split, sample_batch, window

__all__ = ["TrainConfig", "calibrate_mouth_gain", "evaluate_generated", "evaluate_mouth", "export_selected",
           "load_config", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; read from the JSON config (``"task": "audio2motion"``)."""

    cache: str = "out/talking_cache"
    output: str = "out/audio2motion"
    weights: str = "weights/audio2motion.safetensors"
    seed: int = 0
    steps: int = 4000
    batch: int = 16
    window: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_minutes: float = 35.0
    threads: int = 1
    audio_encoder: str = ""  # a local wav2vec2 / HuBERT / Whisper folder; "" = log-mels
    mouth: float = 1.0
    mouth_velocity: float = 1.0
    velocity_loss: str = "l1"  # "l1": per coordinate; "norm": per-landmark 2-D distance (what LMD-v measures)
    eyes: float = 0.5
    pose: float = 0.2
    kl: float = 0.01
    feat_noise: float = 0.1  # Gaussian noise on the log-mel features (natural-log units)
    freq_masks: int = 0  # SpecAugment: mel bands masked per window (set to the training mean)
    freq_mask_width: int = 10  # at most this many mel bins per mask
    eq_tilt: float = 0.0  # random spectral tilt per window, ± this many log units at the band edges
    style_noise: float = 0.0  # Gaussian noise on the subject style code (canonical units)
    speed_perturb: float = 0.0  # tempo of each window × U(1 - this, 1 + this) (features and targets resampled)
    kl_warmup: int = 500
    kl_free_bits: float = 0.0  # nats per latent dimension (per token) the KL may use for free (0: plain KL)
    vae_weight_decay: float = -1.0  # weight decay of the probabilistic branch and its heads (< 0: weight_decay)
    init: str = ""  # warm start: a float32 weights file of this architecture (e.g. a previous run's best)
    min_dev_kl: float = 0.0  # model selection: a checkpoint qualifies only with at least this KL on dev ...
    min_pose_ratio: float = 0.0  # ... and sampled/real pose std (median over the 6 dims, before gain) on dev
    keep_evals: bool = False  # also keep every dev-scored snapshot (<output>/evals/step<N>.safetensors) for audit
    dense: float = 0.5
    gan: float = 0.01
    dev_identities: tuple[str, ...] = ()  # training identities held out for model selection
    sync_offsets: dict[str, int] = field(default_factory=dict)  # recovered out-of-sync training clips
    mouth_gain_calibration: bool = False  # fit one mouth-amplitude factor on the dev identities at export
    log_every: int = 50
    eval_every: int = 250
    ckpt_every: int = 250
    model: Audio2MotionConfig = field(default_factory=Audio2MotionConfig)


def load_config(path: Path) -> TrainConfig:
    """Read and check a JSON training config; unknown keys are an error (typos must not pass silently)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FaceAnimError(f"cannot read training config ({e})", path=path) from e
    if raw.pop("task", "audio2motion") != "audio2motion":
        raise FaceAnimError("not an audio2motion config (task must be 'audio2motion')", path=path)
    raw.pop("description", None)
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise FaceAnimError(f"unknown config keys: {', '.join(sorted(unknown))}", path=path)
    model = raw.pop("model", {})
    mknown = {f.name for f in fields(Audio2MotionConfig)}
    if set(model) - mknown:
        raise FaceAnimError(f"unknown model keys: {', '.join(sorted(set(model) - mknown))}", path=path)
    if "dev_identities" in raw:
        raw["dev_identities"] = tuple(raw["dev_identities"])
    if "sync_offsets" in raw:
        raw["sync_offsets"] = {str(k): int(v) for k, v in raw["sync_offsets"].items()}
    if raw.get("velocity_loss", "l1") not in ("l1", "norm"):
        raise FaceAnimError("velocity_loss must be 'l1' or 'norm'", path=path)
    return TrainConfig(**raw, model=Audio2MotionConfig(**model))


def _tensors(b: Batch) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(getattr(b, k))) for k in b.__dataclass_fields__}


def _augment(t: dict[str, torch.Tensor], cfg: TrainConfig, mean: torch.Tensor, n_mels: int, per: int) -> None:
    """In place: feature noise, random spectral tilt, SpecAugment frequency masks, style noise (log-mel
    features only; speaker/channel variation the 60-odd training identities do not cover)."""
    f = t["feats"]
    b, n, d = f.shape
    f = f + cfg.feat_noise * torch.randn_like(f)
    if d == n_mels * per and (cfg.eq_tilt > 0 or cfg.freq_masks > 0):
        f = f.view(b, n, per, n_mels)
        if cfg.eq_tilt > 0:
            slope = (torch.rand(b, 1, 1, 1) * 2 - 1) * cfg.eq_tilt
            f = f + slope * torch.linspace(-1.0, 1.0, n_mels)
        if cfg.freq_masks > 0:
            fill = mean.view(per, n_mels)
            bins = torch.arange(n_mels)
            for _ in range(cfg.freq_masks):
                w = torch.randint(0, cfg.freq_mask_width + 1, (b, 1))
                lo = (torch.rand(b, 1) * (n_mels - w)).long()
                m = ((bins >= lo) & (bins < lo + w))[:, None, None, :]  # (b, 1, 1, n_mels)
                f = torch.where(m, fill, f)
        f = f.reshape(b, n, d)
    t["feats"] = f
    if cfg.style_noise > 0:
        t["style"] = t["style"] + cfg.style_noise * torch.randn_like(t["style"])


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    err = (pred - target).abs().reshape(*mask.shape, -1).mean(-1)
    return (err * mask).sum() / mask.sum().clamp(min=1.0)


def _losses(model: Audio2Motion, disc: Discriminator, t: dict[str, torch.Tensor], cfg: TrainConfig, step: int
            ) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    m = t["mask"].float()
    mw = m * t["mouth_weight"][:, None]
    b, n = m.shape
    other = torch.cat([t["eyes"].reshape(b, n, -1), t["pose"]], -1)
    out = model(t["feats"], t["style"], target_other=other)
    l_mouth = _masked_l1(out.mouth, t["mouth"], mw)
    mv = mw[:, 1:] * mw[:, :-1]
    dv = (out.mouth[:, 1:] - out.mouth[:, :-1]) - (t["mouth"][:, 1:] - t["mouth"][:, :-1])
    if cfg.velocity_loss == "norm":  # LMD-v's own distance: 2-D per landmark (eps keeps the gradient finite)
        err = torch.sqrt((dv[..., :2] ** 2).sum(-1) + 1e-10).mean(-1)
        l_vel = (err * mv).sum() / mv.sum().clamp(min=1.0)
    else:
        l_vel = _masked_l1(dv, torch.zeros_like(dv), mv)
    l_eyes = _masked_l1(out.eyes, t["eyes"], m)
    l_pose = _masked_l1(out.pose, t["pose"], m)
    # composer: all points for synced clips; for unsynced ones its mouth comes from a wrong-time mouth anyway
    l_dense = _masked_l1(out.dense, t["dense"], mw) + 0.5 * _masked_l1(out.dense, t["dense"], m)
    fake = disc(out.dense, t["style"])
    l_gan = (((fake - 1.0) ** 2) * m).sum() / m.sum()
    beta = cfg.kl * min(1.0, step / max(cfg.kl_warmup, 1))
    l_kl = free_bits_kl(out.kl_dims, cfg.kl_free_bits) if out.kl_dims is not None else out.kl
    total = (cfg.mouth * l_mouth + cfg.mouth_velocity * l_vel + cfg.eyes * l_eyes + cfg.pose * l_pose
             + beta * l_kl + cfg.dense * l_dense + cfg.gan * l_gan)
    logs = {"loss": total.item(), "mouth": l_mouth.item(), "mouth_vel": l_vel.item(), "eyes": l_eyes.item(),
            "pose": l_pose.item(), "kl": out.kl.item(), "dense": l_dense.item(), "gan_g": l_gan.item()}
    return total, logs, out.dense.detach(), m


@torch.no_grad()
def evaluate_mouth(model: Audio2Motion, clips: list[ClipTargets], seed: int = 0) -> dict[str, float]:
    """Mouth L1 and LMD (canonical units ×100) on whole clips, latent drawn from the prior."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    l1s, lmds, w = [], [], []
    for c in clips:
        win = window(c, 0, c.frames)
        feats = torch.from_numpy(win["feats"])[None]
        k = -(-c.frames // model.config.latent_stride)
        noise = torch.randn(1, k, model.config.latent_dim, generator=gen)
        out = model(feats, torch.from_numpy(c.style)[None], noise=noise)
        pred = out.mouth[0].numpy()
        l1s.append(np.abs(pred - win["mouth"]).mean())
        lmds.append(np.linalg.norm(pred[..., :2] - win["mouth"][..., :2], axis=-1).mean() * 100)
        w.append(c.frames)
    model.train(was)
    w_arr = np.asarray(w, np.float64)
    return {"val_mouth_l1": float(np.average(l1s, weights=w_arr)), "val_lmd": float(np.average(lmds, weights=w_arr))}


@torch.no_grad()
def evaluate_generated(model: Audio2Motion, clips: list[ClipTargets], seed: int = 0) -> dict[str, float]:
    """LMD / LMD-v (canonical units ×100) of the mouth generated from each clip's own audio file through the
    ``speak`` generation path (sliding windows, smoothing, voice-activity gate), and of the source-held-still
    baseline; ``score`` is their mean ratio to that baseline (lower is better; < 1 beats it). Also the
    probabilistic branch's health: ``kl``, the posterior's KL on the clips, and ``pose_ratio``, the median over the
    pose dimensions of std(sampled pose) / std(real pose) before any head-motion gain (a collapsed branch gives
    narrow, seed-independent tracks)."""
    from faceanim.audio.generate import generate, speech_input
    from faceanim.audio.targets import landmark_groups
    from faceanim.eval.metrics import lmd, lmd_v
    from faceanim.media.audio import iter_audio
    from faceanim.pipeline.speak import _lower_face_weights, speech_expression

    was = model.training
    model.eval()
    g = landmark_groups()
    lower = _lower_face_weights()
    rows, w, kls, pose_gen, pose_real = [], [], [], [], []
    for c in clips:
        if c.source is None or not Path(c.source).is_file():
            continue
        win = window(c, 0, c.frames)
        other = np.concatenate([win["eyes"].reshape(c.frames, -1), win["pose"]], -1)
        kls.append(float(model(torch.from_numpy(win["feats"])[None], torch.from_numpy(c.style)[None],
                               target_other=torch.from_numpy(np.ascontiguousarray(other, np.float32))[None]).kl))
        rest = c.rest.astype(np.float64)
        gt = (rest[None] + c.dense.astype(np.float64))[:, g.mouth] * 100.0
        pred, poses = [], []
        for f in generate(model, speech_input(iter_audio(c.source, 16000, 2.0)), c.style, seed=seed,
                          pose_gain=None):
            if len(pred) == c.frames:
                break
            pred.append(speech_expression(rest, f, 1.0, lower)[g.mouth])
            poses.append(np.asarray(f.pose, np.float64))
        pred += [pred[-1]] * (c.frames - len(pred))
        pose_gen.append(np.stack(poses).std(0))
        pose_real.append(np.asarray(win["pose"], np.float64).std(0))
        p = np.asarray(pred) * 100.0
        still = np.repeat(rest[g.mouth][None] * 100.0, c.frames, 0)
        rows.append([lmd(p, gt), lmd_v(p, gt), lmd(still, gt), lmd_v(still, gt)])
        w.append(c.frames)
    model.train(was)
    if not rows:
        return {}
    wa = np.asarray(w, np.float64)
    m = np.average(np.asarray(rows), axis=0, weights=wa)
    ratio = np.average(pose_gen, axis=0, weights=wa) / np.maximum(np.average(pose_real, axis=0, weights=wa), 1e-9)
    return {"dev_lmd": float(m[0]), "dev_lmdv": float(m[1]), "dev_still_lmd": float(m[2]),
            "dev_still_lmdv": float(m[3]), "score": float(0.5 * (m[0] / m[2] + m[1] / m[3])),
            "kl": float(np.average(kls, weights=wa)), "pose_ratio": float(np.median(ratio))}


def _qualifies(dev: dict, cfg: TrainConfig) -> bool:
    """Model selection's collapse guard: rank by the lip score only checkpoints whose probabilistic branch works."""
    return dev.get("kl", 0.0) >= cfg.min_dev_kl and dev.get("pose_ratio", 0.0) >= cfg.min_pose_ratio


_PROBABILISTIC = ("post_in", "post", "post_out", "prior", "z_in", "dec", "eye_head", "pose_head")


def _param_groups(model: Audio2Motion, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: the lip branch and shared front end get ``weight_decay``; the probabilistic branch (posterior,
    prior, decoder) and the eye/pose heads get ``vae_weight_decay`` (a strong decay chosen for the lips shrinks the
    latent path towards the prior)."""
    vae_wd = cfg.weight_decay if cfg.vae_weight_decay < 0 else cfg.vae_weight_decay
    lip, vae = [], []
    for name, p in model.named_parameters():
        (vae if name.split(".")[0] in _PROBABILISTIC else lip).append(p)
    return [{"params": lip, "weight_decay": cfg.weight_decay}, {"params": vae, "weight_decay": vae_wd}]


def _save_model(path: Path, model: Audio2Motion, meta: dict) -> None:
    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})


def _save_checkpoint(path: Path, model: Audio2Motion, disc: Discriminator, opts: list[torch.optim.Optimizer],
                     meta: dict) -> None:
    """Model, discriminator and optimiser state as safetensors (no pickle) + JSON metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.contiguous()
    for k, v in disc.state_dict().items():
        tensors[f"disc.{k}"] = v.contiguous()
    steps: dict[str, float] = {}
    for j, opt in enumerate(opts):
        for i, st in opt.state_dict()["state"].items():
            for name, v in st.items():
                if name == "step":
                    steps[f"{j}.{i}"] = float(v)
                else:
                    tensors[f"opt{j}.{i}.{name}"] = v.contiguous()
    meta = {**meta, "opt_steps": steps}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})


def _load_checkpoint(path: Path, model: Audio2Motion, disc: Discriminator, opts: list[torch.optim.Optimizer]
                     ) -> dict:
    from safetensors import safe_open

    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
    for j, opt in enumerate(opts):
        sd = opt.state_dict()
        state = {}
        for i in range(sum(len(g["params"]) for g in sd["param_groups"])):
            key = f"{j}.{i}"
            if key not in meta["opt_steps"]:
                continue
            st = {"step": torch.tensor(meta["opt_steps"][key])}
            for name in ("exp_avg", "exp_avg_sq"):
                st[name] = tensors[f"opt{j}.{i}.{name}"]
            state[i] = st
        sd["state"] = state
        opt.load_state_dict(sd)
    return meta


def calibrate_pose_gain(model: Audio2Motion, clips: list[ClipTargets], limit: int = 12) -> list[float]:
    """Per-dimension head-motion gain (6,) that gives sampled pose tracks the spread of the real ones: median
    over training clips of std(real) / std(sampled), clipped to [1, 3] (a regression-to-the-mean fix)."""
    from faceanim.audio.generate import generate, speech_input
    from faceanim.media.audio import iter_audio

    ratios = []
    for c in [c for c in clips if c.synced and c.frames > 150 and not c.name.endswith("~mirror")][:limit]:
        if c.source is None or not Path(c.source).is_file():
            continue
        real = window(c, 0, c.frames)["pose"].std(0)
        frames = generate(model, speech_input(iter_audio(c.source, 16000, 2.0)), c.style, pose_gain=None)
        gen = np.stack([f.pose for f in frames]).std(0)
        ratios.append(real / np.maximum(gen, 1e-6))
    if not ratios:
        return [1.0] * model.config.pose_dim
    return [round(float(g), 3) for g in np.clip(np.median(ratios, 0), 1.0, 3.0)]


@torch.no_grad()
def calibrate_mouth_gain(model: Audio2Motion, dev_clips: list[ClipTargets],
                         gains: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5)
                         ) -> tuple[float, list[dict]]:
    """Scale the mouth head's output by the factor that scores best on the dev clips (:func:`evaluate_generated`),
    folded into its weights (so the file format and the generation path are unchanged). A network trained on
    few identities is over- or under-confident about mouth amplitude on new people; LMD-v in particular
    rewards a velocity amplitude matched to how well the velocity is predicted. Returns (gain, table)."""
    head = model.mouth_head
    w0, b0 = head.weight.detach().clone(), head.bias.detach().clone()
    table = []
    for g in gains:
        head.weight.copy_(w0 * g)
        head.bias.copy_(b0 * g)
        r = evaluate_generated(model, dev_clips)
        table.append({"gain": g, **{k: round(v, 4) for k, v in r.items()}})
    best = min(table, key=lambda r: r["score"])["gain"]
    head.weight.copy_(w0 * best)
    head.bias.copy_(b0 * best)
    return float(best), table


def export_weights(model: Audio2Motion, path: Path, info: dict, pose_gain: list[float] | None = None) -> None:
    """Inference weights: float16 safetensors with the network config, pose gain and training facts as metadata."""
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "faceanim-audio2motion-1", "config": json.dumps(model.config.to_dict()),
            "info": json.dumps(info), "pose_gain": json.dumps(pose_gain or [1.0] * model.config.pose_dim)}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _finalize(cfg: TrainConfig, model: Audio2Motion, weights: Path, info: dict, train_clips: list[ClipTargets],
              val_clips: list[ClipTargets], dev_clips: list[ClipTargets]) -> None:
    """Mouth-gain calibration on dev (if configured), head-motion gain, export."""
    if cfg.mouth_gain_calibration and dev_clips:
        gain, table = calibrate_mouth_gain(model, dev_clips)
        info["mouth_gain"], info["mouth_gain_dev_table"] = gain, table
    if val_clips:
        info.update(evaluate_mouth(model, val_clips))
    model.eval()
    gain = calibrate_pose_gain(model, train_clips)
    info["pose_gain"] = gain
    export_weights(model, weights, info, gain)


def _splits(cfg: TrainConfig, encoder=None) -> tuple[list[ClipTargets], list[ClipTargets], list[ClipTargets]]:
    """The run's (train, val, dev) clips: recovered sync offsets on train/dev, dev identities held out of train,
    dev only the synced clips (empty without ``dev_identities``)."""
    cache = Path(cfg.cache)
    train = load_split(cache, "train", encoder=encoder, offsets=cfg.sync_offsets, dev=cfg.dev_identities)
    val = load_split(cache, "val", mirror=False, unsynced=False, encoder=encoder)
    dev = (load_split(cache, "dev", mirror=False, encoder=encoder, offsets=cfg.sync_offsets, dev=cfg.dev_identities,
                      synced_only=True) if cfg.dev_identities else [])
    return train, val, dev


def export_selected(config_path: Path) -> Path:
    """Re-export the run's dev-selected weights (``<output>/best.safetensors``) with the config's export steps
    (mouth-gain calibration, head-motion gain), without training: ``python -m ... CONFIG --export``."""
    from safetensors import safe_open

    cfg = load_config(config_path)
    torch.set_num_threads(max(1, cfg.threads))
    out_dir = Path(cfg.output)
    best_path = out_dir / "best.safetensors"
    if not best_path.is_file():
        raise FaceAnimError("no dev-selected weights to export (train with dev_identities first)", path=best_path)
    with safe_open(str(best_path), "pt") as f:
        best = json.loads(f.metadata()["meta"])
    with safe_open(str(out_dir / "checkpoint.safetensors"), "pt") as f:
        last = json.loads(f.metadata()["meta"])
    if cfg.audio_encoder:
        raise FaceAnimError("--export supports log-mel runs only")
    train_clips, val_clips, dev_clips = _splits(cfg)
    model = Audio2Motion(cfg.model)
    model.load_state_dict(load_file(str(best_path)))
    info = {"audio_encoder": "log-mel", "steps": int(last["step"]), "seconds": round(float(last["seconds"]), 1),
            "seed": cfg.seed, "world_size": 1, "train_clips": sorted({c.name for c in train_clips}),
            "val_clips": sorted(c.name for c in val_clips), "dev_clips": sorted(c.name for c in dev_clips),
            "recovered_offsets": cfg.sync_offsets,
            "selected": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in best.items()}}
    weights = Path(cfg.weights)
    _finalize(cfg, model, weights, info, train_clips, val_clips, dev_clips)
    return weights


def _out_of_time(t0: float, minutes: float, world: int) -> bool:
    """True once the time budget is spent; under torchrun every process stops at the same step."""
    late = torch.tensor(float(time.time() - t0 >= minutes * 60))
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(late, op=dist.ReduceOp.MAX)
    return bool(late.item())


def _all_reduce_grads(module: torch.nn.Module, world: int) -> None:
    import torch.distributed as dist

    for p in module.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def _feature_stats(clips: list[ClipTargets]) -> tuple[torch.Tensor, torch.Tensor]:
    feats = np.concatenate([window(c, 0, c.frames)["feats"] for c in clips])
    return torch.from_numpy(feats.mean(0)), torch.from_numpy(feats.std(0) + 1e-3)


def train(config_path: Path, resume: bool, progress: bool) -> Path:
    """Train (or resume) per the config; returns the exported weights' path."""
    cfg = load_config(config_path)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed + rank)
    rng = np.random.default_rng(cfg.seed + rank)
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "checkpoint.safetensors"
    encoder = None
    mcfg = cfg.model
    if cfg.audio_encoder:
        from dataclasses import replace

        from faceanim.audio.encoders import load_speech_encoder

        encoder = load_speech_encoder(cfg.audio_encoder)
        mcfg = replace(mcfg, audio_dim=encoder.dim)
    train_clips, val_clips, dev_clips = _splits(cfg, encoder)
    if not train_clips:
        raise FaceAnimError("no usable training clips in the cache", path=cfg.cache)
    model = Audio2Motion(mcfg)
    disc = Discriminator(mcfg)
    mean, std = _feature_stats(train_clips)
    model.feat_mean.copy_(mean)
    model.feat_std.copy_(std)
    if cfg.init:
        model.load_state_dict(load_file(cfg.init))
    opt_g = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.lr * 0.5, weight_decay=cfg.weight_decay)
    step, used = 0, 0.0
    best_path = out_dir / "best.safetensors"
    best: dict = {"score": float("inf")}
    if resume:
        if not ckpt.is_file():
            raise FaceAnimError("nothing to resume (no checkpoint)", path=ckpt)
        meta = _load_checkpoint(ckpt, model, disc, [opt_g, opt_d])
        step, used = int(meta["step"]), float(meta["seconds"])
        best = meta.get("best", best)
        rng = np.random.default_rng([cfg.seed + rank, step])
        torch.manual_seed(cfg.seed + rank + step)
    first = step

    def lr_factor(s: int) -> float:  # cosine over the run: whichever of the step or the time budget ends first
        frac = max((s + first) / cfg.steps, (time.time() - t0) / (cfg.max_minutes * 60.0))
        return float(0.5 * (1 + np.cos(np.pi * min(1.0, frac))) * 0.95 + 0.05)

    t0 = time.time() - used
    sched = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_factor)
    log_path = out_dir / "log.csv"
    new_log = not (resume and log_path.is_file())
    log_file = open(log_path, "w" if new_log else "a", newline="")  # noqa: SIM115 (closed below)
    writer = csv.writer(log_file)
    cols = ["step", "seconds", "lr", "loss", "mouth", "mouth_vel", "eyes", "pose", "kl", "dense", "gan_g", "gan_d",
            "val_mouth_l1", "val_lmd", "dev_lmd", "dev_lmdv", "dev_score", "dev_kl", "dev_pose_ratio", "cpu_seconds"]
    if new_log and rank == 0:
        writer.writerow(cols)
    c0 = time.process_time()
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, unit="step", desc="audio2motion")
    acc: dict[str, list[float]] = {}

    def save() -> None:
        if rank == 0:
            _save_checkpoint(ckpt, model, disc, [opt_g, opt_d],
                             {"step": step, "seconds": time.time() - t0, "config": asdict(cfg), "best": best})

    try:
        while step < cfg.steps and not _out_of_time(t0, cfg.max_minutes, world):
            t = _tensors(sample_batch(train_clips, cfg.batch, cfg.window, rng, cfg.speed_perturb))
            _augment(t, cfg, model.feat_mean, mcfg.n_mels, mcfg.mels_per_frame)
            loss, logs, fake, m = _losses(model, disc, t, cfg, step)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:  # torchrun: average the gradients of every process (each drew its own batch)
                _all_reduce_grads(model, world)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt_g.step()
            sched.step()
            d_real = disc(t["dense"], t["style"])
            d_fake = disc(fake, t["style"])
            l_d = ((((d_real - 1.0) ** 2) + d_fake**2) * m).sum() / m.sum()
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            if world > 1:
                _all_reduce_grads(disc, world)
            opt_d.step()
            logs["gan_d"] = l_d.item()
            for k, v in logs.items():
                acc.setdefault(k, []).append(v)
            step += 1
            bar.update(1)
            if rank == 0 and (step % cfg.log_every == 0 or step == cfg.steps):
                row = {k: float(np.mean(v)) for k, v in acc.items()}
                acc = {}
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    row.update(evaluate_mouth(model, val_clips) if val_clips else {})
                    if dev_clips:
                        dev = evaluate_generated(model, dev_clips)
                        row.update({"dev_lmd": dev["dev_lmd"], "dev_lmdv": dev["dev_lmdv"], "dev_score": dev["score"],
                                    "dev_kl": dev["kl"], "dev_pose_ratio": dev["pose_ratio"]})
                        if cfg.keep_evals:
                            _save_model(out_dir / "evals" / f"step{step}.safetensors", model, {**dev, "step": step})
                        if dev["score"] < best["score"] and _qualifies(dev, cfg):
                            best = {**dev, "step": step}
                            _save_model(best_path, model, best)
                row["cpu_seconds"] = time.process_time() - c0
                writer.writerow([step, round(time.time() - t0, 1), sched.get_last_lr()[0]]
                                + [f"{row[c]:.5f}" if c in row else "" for c in cols[3:]])
                log_file.flush()
                bar.set_postfix(mouth=f"{row['mouth']:.4f}", val=f"{row.get('val_lmd', float('nan')):.3f}")
            if step % cfg.ckpt_every == 0:
                save()
        save()
    finally:
        bar.close()
        log_file.close()
    weights = Path(cfg.weights)
    if rank == 0:
        info = {"audio_encoder": Path(cfg.audio_encoder).name if cfg.audio_encoder else "log-mel",
                "steps": step, "seconds": round(time.time() - t0, 1), "seed": cfg.seed, "world_size": world,
                "train_clips": sorted({c.name for c in train_clips}), "val_clips": sorted(c.name for c in val_clips),
                "dev_clips": sorted(c.name for c in dev_clips), "recovered_offsets": cfg.sync_offsets,
                "init": Path(cfg.init).name if cfg.init else ""}
        if dev_clips and best_path.is_file() and np.isfinite(best["score"]):
            model.load_state_dict(load_file(str(best_path)))  # the dev-selected weights, not the last ones
            info["selected"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in best.items()}
        _finalize(cfg, model, weights, info, train_clips, val_clips, dev_clips)
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return weights


if __name__ == "__main__":  # python -m faceanim.train.audio2motion_trainer CONFIG [--resume | --export]
    import sys

    if "--export" in sys.argv[2:]:
        print(export_selected(Path(sys.argv[1])))
    else:
        print(train(Path(sys.argv[1]), "--resume" in sys.argv[2:], progress=True))
