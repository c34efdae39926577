"""Speech → per-frame motion outputs with sliding windows (MODA: 300 frames, stride 150), cross-faded in the
overlaps, streaming: audio of any length runs in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from faceanim.audio.features import LogMelStream, MelConfig
from faceanim.audio.targets import frame_features
from faceanim.audio.vad import EnergyVad, SileroVad, VadConfig, frame_rms_db
from faceanim.errors import FaceAnimError

__all__ = ["FPS", "SpeechFrame", "SpeechInput", "generate", "speech_input"]

FPS = 25


@dataclass(frozen=True)
class SpeechInput:
    """A block of consecutive video frames' audio: 4 log-mel frames each and a 0..1 speech gate."""

    mel: np.ndarray  # (4·n, n_mels)
    gate: np.ndarray  # (n,)
    audio: np.ndarray | None = None  # (640·n,) the 16 kHz samples (kept for a speech encoder)


@dataclass(frozen=True)
class SpeechFrame:
    """The network's output for one 25-fps frame (displacements from the subject's rest face)."""

    index: int
    time: float
    mouth: np.ndarray  # (M, 3)
    eyes: np.ndarray  # (E, 3)
    pose: np.ndarray  # (6,)
    dense: np.ndarray  # (478, 3)
    gate: float  # 1 while speaking, 0 in silence


def speech_input(chunks: Iterable[np.ndarray], mel: MelConfig = MelConfig(), vad: VadConfig = VadConfig(),
                 detector: str = "energy") -> Iterator[SpeechInput]:
    """Audio chunks (16 kHz mono) → aligned per-frame features and speech gate, streaming.

    ``detector``: "energy" (no model) or "silero" (silero-vad's bundled ONNX model)."""
    per_frame = mel.sample_rate // FPS
    mels_per = per_frame // mel.hop
    stream = LogMelStream(mel)
    if detector == "silero":
        silero = SileroVad()
    elif detector == "energy":
        energy = EnergyVad(vad)
    else:
        raise ValueError(f"unknown voice-activity detector {detector!r}")
    pending_mel = np.zeros((0, mel.n_mels), np.float32)
    pending_audio = np.zeros(0, np.float32)
    gate_level = 0.0
    done = False
    it = iter(chunks)
    while not done:
        chunk = next(it, None)
        if chunk is None:
            done = True
            new = stream.finish()
            if pending_audio.size % per_frame:  # last partial frame: pad to a whole frame
                pending_audio = np.concatenate([pending_audio, np.zeros(per_frame - pending_audio.size % per_frame,
                                                                        np.float32)])
        else:
            new = stream.push(chunk)
            pending_audio = np.concatenate([pending_audio, np.asarray(chunk, np.float32)])
        pending_mel = np.concatenate([pending_mel, new])
        n = min(len(pending_mel) // mels_per, pending_audio.size // per_frame)
        if done:
            n = min(-(-len(pending_mel) // mels_per), pending_audio.size // per_frame)
            short = n * mels_per - len(pending_mel)
            if short > 0:
                pending_mel = np.concatenate([pending_mel, np.repeat(pending_mel[-1:], short, 0)])
        if n <= 0:
            continue
        block = pending_audio[: n * per_frame]
        speech = silero(block, final=done) if detector == "silero" else energy(frame_rms_db(block, per_frame))
        gate = np.empty(n, np.float32)
        for i, s in enumerate(speech):  # same ramps as smooth_gate, continued across blocks
            gate_level = min(1.0, gate_level + 0.5) if s else max(0.0, gate_level - 0.25)
            gate[i] = gate_level
        yield SpeechInput(pending_mel[: n * mels_per], gate, pending_audio[: n * per_frame].copy())
        pending_mel = pending_mel[n * mels_per :]
        pending_audio = pending_audio[n * per_frame :]


def generate(model, inputs: Iterable[SpeechInput], style: np.ndarray, seed: int = 0, temperature: float = 1.0,
             window: int = 300, stride: int = 150, encoder=None, mouth_smoothing: float = 1.5,
             pose_gain: np.ndarray | str | None = "model") -> Iterator[SpeechFrame]:
    """Run ``model`` over sliding windows of the speech and yield one :class:`SpeechFrame` per 25-fps frame.

    With ``encoder`` (a :class:`~faceanim.audio.encoders.SpeechEncoder`; the model must have been trained on
    its features) each window's audio is encoded instead of using log-mels.

    Each window draws its own latent noise from ``seed``; the overlap of consecutive windows is blended with a
    linear cross-fade, so the output is continuous and memory holds at most one window. Mouth displacements are
    smoothed over time within each window (Gaussian, ``mouth_smoothing`` frames; 0 = off): the network's
    frame-to-frame jitter is not speech. Head pose is multiplied by the weights' calibrated ``pose_gain``
    ("model"; None = raw network output).
    """
    import torch

    if not 0 < stride <= window:
        raise ValueError("need 0 < stride <= window")
    cfg = model.config
    if (cfg.audio_dim > 0) != (encoder is not None) or (encoder is not None and encoder.dim != cfg.audio_dim):
        want = f"a speech encoder with {cfg.audio_dim}-dim features" if cfg.audio_dim else "log-mel features"
        raise FaceAnimError(f"these audio-to-motion weights were trained on {want}")
    rng = np.random.default_rng(seed)
    gain = getattr(model, "pose_gain", None) if isinstance(pose_gain, str) else pose_gain
    style_t = torch.from_numpy(np.asarray(style, np.float32))[None]
    mels = np.zeros((0, cfg.n_mels), np.float32)
    gates = np.zeros(0, np.float32)
    audio = np.zeros(0, np.float32)
    base = 0  # frame index of mels[0]
    prev: dict[str, np.ndarray] | None = None  # previous window's outputs for frames [base, base + overlap)
    emitted = 0
    per = cfg.mels_per_frame

    def run(n: int) -> dict[str, np.ndarray]:
        if encoder is not None:
            feats = torch.from_numpy(encoder.features(audio[: n * 640]).astype(np.float32))[None]
        else:
            feats = torch.from_numpy(frame_features(mels[: n * per], per))[None]
        k = -(-n // cfg.latent_stride)
        noise = torch.from_numpy(rng.standard_normal((1, k, cfg.latent_dim)).astype(np.float32))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small network: one thread is fastest and leaves a core to rendering
        try:
            out = model(feats, style_t, noise=noise, temperature=temperature)
        finally:
            torch.set_num_threads(threads)
        res = {"mouth": out.mouth[0].numpy(), "eyes": out.eyes[0].numpy(), "pose": out.pose[0].numpy(),
               "dense": out.dense[0].numpy()}
        if gain is not None:
            res["pose"] = res["pose"] * np.asarray(gain, np.float32)
        if mouth_smoothing > 0 and n > 1:
            for key in ("mouth", "dense"):
                res[key] = gaussian_filter1d(res[key], mouth_smoothing, axis=0, mode="nearest")
        return res

    def emit(cur: dict[str, np.ndarray], upto: int) -> Iterator[SpeechFrame]:
        nonlocal emitted
        for i in range(emitted - base, upto):
            vals = {}
            for key, v in cur.items():
                if prev is not None and i < len(prev[key]):
                    w = (i + 1) / (len(prev[key]) + 1)  # ramps from the old window to the new one
                    vals[key] = (1.0 - w) * prev[key][i] + w * v[i]
                else:
                    vals[key] = v[i]
            yield SpeechFrame(base + i, (base + i) / FPS, vals["mouth"], vals["eyes"], vals["pose"], vals["dense"],
                              float(gates[i]))
            emitted += 1

    with torch.inference_mode():
        for block in inputs:
            mels = np.concatenate([mels, block.mel])
            gates = np.concatenate([gates, block.gate])
            if encoder is not None and block.audio is not None:
                audio = np.concatenate([audio, block.audio])
            while len(gates) >= window:
                cur = run(window)
                yield from emit(cur, stride)
                prev = {k: v[stride:] for k, v in cur.items()}  # the overlap the next window blends with
                mels, gates, base = mels[stride * per :], gates[stride:], base + stride
                audio = audio[stride * 640 :]
        n = len(gates)
        if n > 0:  # the tail: a last, shorter window (it still blends with the previous one)
            cur = run(n)
            yield from emit(cur, n)
