"""Optional local speech encoders (``--audio-encoder PATH``): wav2vec2, HuBERT and Whisper checkpoints in the
Hugging Face folder layout (``config.json`` + ``model.safetensors``), loaded without ``transformers`` and
without pickle (``pytorch_model.bin`` is refused). Nothing is downloaded.

Each encoder turns 16 kHz audio into per-video-frame features at 25 fps (wav2vec2/HuBERT and Whisper run at
50 Hz, so two encoder frames are concatenated per video frame).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceanim.errors import FaceAnimError

__all__ = ["SpeechEncoder", "load_speech_encoder"]


def _act(name: str):
    return {"gelu": F.gelu, "relu": F.relu, "gelu_new": F.gelu, "swish": F.silu, "silu": F.silu}[name]


class _Attention(nn.Module):
    def __init__(self, d: int, heads: int, k_bias: bool = True) -> None:
        super().__init__()
        self.h = heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d, bias=k_bias)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.h, d // self.h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


# ------------------------------------------------------------------------------------------ wav2vec2 / HuBERT


class _ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, bias: bool, norm: str | None, act) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, s, bias=bias)
        self.norm_kind = norm
        if norm == "group":
            self.layer_norm: nn.Module = nn.GroupNorm(cout, cout, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_kind == "group":
            x = self.layer_norm(x)
        elif self.norm_kind == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.act(x)


class _FeedForward(nn.Module):
    def __init__(self, d: int, ff: int, act) -> None:
        super().__init__()
        self.intermediate_dense, self.output_dense, self.act = nn.Linear(d, ff), nn.Linear(ff, d), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(self.act(self.intermediate_dense(x)))


class _W2VLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, act, eps: float, stable: bool) -> None:
        super().__init__()
        self.attention = _Attention(d, heads)
        self.layer_norm = nn.LayerNorm(d, eps=eps)
        self.feed_forward = _FeedForward(d, ff, act)
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)
        self.stable = stable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stable:  # pre-norm (large models)
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + self.feed_forward(x))


class Wav2Vec2Like(nn.Module):
    """wav2vec2 / HuBERT encoder (the ``Wav2Vec2Model`` / ``HubertModel`` layout)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        act = _act(cfg.get("feat_extract_activation", "gelu"))
        norm_mode = cfg.get("feat_extract_norm", "group")
        dims, kernels, strides = cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"]
        layers = []
        for i, (c, k, s) in enumerate(zip(dims, kernels, strides, strict=True)):
            norm = ("group" if i == 0 else None) if norm_mode == "group" else "layer"
            layers.append(_ConvLayer(dims[i - 1] if i else 1, c, k, s, cfg.get("conv_bias", False), norm, act))
        self.conv_layers = nn.ModuleList(layers)
        eps = cfg.get("layer_norm_eps", 1e-5)
        d = cfg["hidden_size"]
        self.proj_norm = cfg.get("feat_proj_layer_norm", True)
        self.fp_layer_norm = nn.LayerNorm(dims[-1], eps=eps)
        self.fp_projection = nn.Linear(dims[-1], d)
        k = cfg.get("num_conv_pos_embeddings", 128)
        self.pos_conv = nn.utils.parametrizations.weight_norm(
            nn.Conv1d(d, d, k, padding=k // 2, groups=cfg.get("num_conv_pos_embedding_groups", 16)), dim=2)
        self.pos_trim = 1 if k % 2 == 0 else 0
        self.stable = cfg.get("do_stable_layer_norm", False)
        self.enc_layer_norm = nn.LayerNorm(d, eps=eps)
        hact = _act(cfg.get("hidden_act", "gelu"))
        self.layers = nn.ModuleList(
            _W2VLayer(d, cfg["num_attention_heads"], cfg["intermediate_size"], hact, eps, self.stable)
            for _ in range(cfg["num_hidden_layers"]))
        self.act = act

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, samples) → (B, frames at 50 Hz, hidden)."""
        x = wav[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        x = x.transpose(1, 2)
        if self.proj_norm:
            x = self.fp_layer_norm(x)
        x = self.fp_projection(x)
        pos = self.pos_conv(x.transpose(1, 2))
        if self.pos_trim:
            pos = pos[:, :, : -self.pos_trim]
        x = x + self.act(pos).transpose(1, 2)
        if not self.stable:
            x = self.enc_layer_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.enc_layer_norm(x) if self.stable else x

    @staticmethod
    def rename(key: str) -> str | None:
        """A Hugging Face key → this module's key (None: not part of the encoder)."""
        for prefix in ("wav2vec2.", "hubert.", "data2vec_audio."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        key = key.replace("feature_extractor.conv_layers.", "conv_layers.")
        key = key.replace("feature_projection.layer_norm.", "fp_layer_norm.")
        key = key.replace("feature_projection.projection.", "fp_projection.")
        key = key.replace("encoder.pos_conv_embed.conv.weight_g", "pos_conv.parametrizations.weight.original0")
        key = key.replace("encoder.pos_conv_embed.conv.weight_v", "pos_conv.parametrizations.weight.original1")
        key = key.replace("encoder.pos_conv_embed.conv.parametrizations.", "pos_conv.parametrizations.")
        key = key.replace("encoder.pos_conv_embed.conv.bias", "pos_conv.bias")
        key = key.replace("encoder.layer_norm.", "enc_layer_norm.")
        key = key.replace("encoder.layers.", "layers.")
        ok = key.startswith(("conv_layers.", "fp_", "pos_conv.", "enc_layer_norm.", "layers."))
        return key if ok else None


# ------------------------------------------------------------------------------------------ Whisper


class _WhisperLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, act) -> None:
        super().__init__()
        self.self_attn = _Attention(d, heads, k_bias=False)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder (``WhisperModel.encoder`` layout) on its own 80/128-bin log-mels."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        d = cfg["d_model"]
        self.n_mels = cfg.get("num_mel_bins", 80)
        self.conv1 = nn.Conv1d(self.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(cfg.get("max_source_positions", 1500), d)
        act = _act(cfg.get("activation_function", "gelu"))
        self.layers = nn.ModuleList(_WhisperLayer(d, cfg["encoder_attention_heads"], cfg["encoder_ffn_dim"], act)
                                    for _ in range(cfg["encoder_layers"]))
        self.layer_norm = nn.LayerNorm(d)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Whisper's features: 25 ms Hann windows, 10 ms hop, Slaney mels, log10, 8-decade range, (x + 4) / 4."""
        from faceanim.audio.features import MelConfig, mel_filterbank

        cfg = MelConfig(n_fft=400, win=400, hop=160, n_mels=self.n_mels, fmin=0.0, fmax=8000.0, scale="slaney")
        spec = torch.stft(wav, 400, 160, window=torch.hann_window(400), center=True, return_complex=True)
        power = spec.abs()[..., :-1] ** 2
        mel = torch.from_numpy(mel_filterbank(cfg)) @ power
        logm = torch.clamp(mel, min=1e-10).log10()
        logm = torch.maximum(logm, logm.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (logm + 4.0) / 4.0

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, samples ≤ 30 s) → (B, frames at 50 Hz, d_model); input is zero-padded to 30 s as Whisper expects."""
        n = wav.shape[-1]
        wav = F.pad(wav, (0, max(0, 480000 - n)))
        x = F.gelu(self.conv2(F.gelu(self.conv1(self.log_mel(wav)))))
        x = x.transpose(1, 2)
        t = min(x.shape[1], self.embed_positions.num_embeddings)
        x = x[:, :t] + self.embed_positions.weight[:t]
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)[:, : -(-n // 320)]

    @staticmethod
    def rename(key: str) -> str | None:
        for prefix in ("model.encoder.", "encoder."):
            if key.startswith(prefix):
                return key[len(prefix):]
        return None


# ------------------------------------------------------------------------------------------ loading


@dataclass
class SpeechEncoder:
    """A loaded encoder: ``features(samples_16k)`` → ``(frames at 25 fps, dim)``."""

    kind: str  # "wav2vec2" | "hubert" | "whisper"
    module: nn.Module
    width: int
    max_seconds: float = 20.0  # longer audio is encoded in pieces of this length (Whisper: 30 s)

    @property
    def dim(self) -> int:
        return 2 * self.width  # two 50-Hz encoder frames per video frame

    @torch.inference_mode()
    def features(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, np.float32).ravel()
        n_frames = -(-x.size // 640)
        step = int(self.max_seconds * 16000) // 640 * 640
        outs = []
        for i in range(0, max(x.size, 1), step):
            piece = x[i : i + step]
            piece = np.pad(piece, (0, max(0, 400 - piece.size)))
            if self.kind != "whisper":  # wav2vec2 / HuBERT expect zero-mean, unit-variance input
                piece = (piece - piece.mean()) / (piece.std() + 1e-7)
            h = self.module(torch.from_numpy(piece)[None])[0].numpy()
            want = -(-min(step, x.size - i) // 320)
            h = np.concatenate([h, np.repeat(h[-1:], max(0, want - len(h)), 0)])[:want]
            outs.append(h)
        h = np.concatenate(outs)
        h = np.concatenate([h, np.repeat(h[-1:], max(0, 2 * n_frames - len(h)), 0)])[: 2 * n_frames]
        return h.reshape(n_frames, -1)


def load_speech_encoder(path: str | Path) -> SpeechEncoder:
    """Load a local wav2vec2 / HuBERT / Whisper checkpoint folder (``config.json`` + ``model.safetensors``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(path)
    if not root.is_dir():
        raise FaceAnimError("not a checkpoint folder (expected config.json and model.safetensors)", path=root)
    weights = root / "model.safetensors"
    if not weights.is_file():
        why = " (pickle checkpoints such as pytorch_model.bin are not loaded)" if any(root.glob("*.bin")) else ""
        raise FaceAnimError(f"no model.safetensors{why}", path=root)
    try:
        cfg = json.loads((root / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FaceAnimError(f"cannot read config.json ({e})", path=root) from e
    kind = str(cfg.get("model_type", "")).lower()
    try:
        if kind in ("wav2vec2", "hubert"):
            module: nn.Module = Wav2Vec2Like(cfg)
            rename, width = Wav2Vec2Like.rename, cfg["hidden_size"]
        elif kind == "whisper":
            module = WhisperEncoder(cfg)
            rename, width = WhisperEncoder.rename, cfg["d_model"]
        else:
            raise FaceAnimError(f"unsupported speech encoder model_type {kind!r} (wav2vec2, hubert or whisper)",
                                path=root)
        raw = load_file(str(weights))
    except (KeyError, TypeError) as e:
        raise FaceAnimError(f"config.json lacks a setting ({e})", path=root) from e
    except (SafetensorError, OSError) as e:
        raise FaceAnimError(f"cannot read model.safetensors ({e})", path=root) from e
    state = {}
    for k, v in raw.items():
        new = rename(k)
        if new is not None:
            state[new] = v.float()
    missing, _ = module.load_state_dict(state, strict=False)
    if kind != "whisper" and not cfg.get("feat_proj_layer_norm", True):
        missing = [k for k in missing if not k.startswith("fp_layer_norm.")]
    if missing:
        raise FaceAnimError(f"model.safetensors lacks {len(missing)} encoder tensors (e.g. {missing[0]})", path=root)
    return SpeechEncoder(kind, module.eval(), int(width), 30.0 if kind == "whisper" else 20.0)
