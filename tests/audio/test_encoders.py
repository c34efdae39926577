"""Local speech encoders: tiny random checkpoints in the Hugging Face folder layout load and encode at 25 fps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from faceanim.audio.encoders import load_speech_encoder
from faceanim.errors import FaceAnimError

W2V = {"model_type": "wav2vec2", "conv_dim": [16, 16, 16, 16, 16, 16, 16], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
       "conv_stride": [5, 2, 2, 2, 2, 2, 2], "hidden_size": 24, "num_attention_heads": 2, "intermediate_size": 32,
       "num_hidden_layers": 2, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4,
       "feat_extract_norm": "group", "do_stable_layer_norm": False}
WHISPER = {"model_type": "whisper", "d_model": 24, "num_mel_bins": 80, "encoder_layers": 2,
           "encoder_attention_heads": 2, "encoder_ffn_dim": 32, "max_source_positions": 1500}


def _w2v_state(cfg: dict, prefix: str) -> dict[str, torch.Tensor]:
    """Tensors named and shaped as in a transformers Wav2Vec2Model / HubertModel checkpoint (+ a CTC head)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.1

    d, c = cfg["hidden_size"], cfg["conv_dim"]
    st = {}
    for i, (co, k) in enumerate(zip(c, cfg["conv_kernel"], strict=True)):
        st[f"{prefix}feature_extractor.conv_layers.{i}.conv.weight"] = r(co, c[i - 1] if i else 1, k)
    st[f"{prefix}feature_extractor.conv_layers.0.layer_norm.weight"] = torch.ones(c[0])
    st[f"{prefix}feature_extractor.conv_layers.0.layer_norm.bias"] = torch.zeros(c[0])
    st[f"{prefix}feature_projection.layer_norm.weight"] = torch.ones(c[-1])
    st[f"{prefix}feature_projection.layer_norm.bias"] = torch.zeros(c[-1])
    st[f"{prefix}feature_projection.projection.weight"] = r(d, c[-1])
    st[f"{prefix}feature_projection.projection.bias"] = r(d)
    k, groups = cfg["num_conv_pos_embeddings"], cfg["num_conv_pos_embedding_groups"]
    st[f"{prefix}encoder.pos_conv_embed.conv.weight_g"] = r(1, 1, k).abs() + 0.5
    st[f"{prefix}encoder.pos_conv_embed.conv.weight_v"] = r(d, d // groups, k)
    st[f"{prefix}encoder.pos_conv_embed.conv.bias"] = r(d)
    st[f"{prefix}encoder.layer_norm.weight"], st[f"{prefix}encoder.layer_norm.bias"] = torch.ones(d), torch.zeros(d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            st[p + f"attention.{name}.weight"], st[p + f"attention.{name}.bias"] = r(d, d), r(d)
        ff = cfg["intermediate_size"]
        st[p + "feed_forward.intermediate_dense.weight"] = r(ff, d)
        st[p + "feed_forward.intermediate_dense.bias"] = r(ff)
        st[p + "feed_forward.output_dense.weight"], st[p + "feed_forward.output_dense.bias"] = r(d, ff), r(d)
        for ln in ("layer_norm", "final_layer_norm"):
            st[p + f"{ln}.weight"], st[p + f"{ln}.bias"] = torch.ones(d), torch.zeros(d)
    st[f"{prefix}masked_spec_embed"] = r(d)
    st["lm_head.weight"], st["lm_head.bias"] = r(32, d), r(32)  # a CTC head: ignored
    return st


def _whisper_state(cfg: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.1

    d, ff = cfg["d_model"], cfg["encoder_ffn_dim"]
    st = {"model.encoder.conv1.weight": r(d, 80, 3), "model.encoder.conv1.bias": r(d),
          "model.encoder.conv2.weight": r(d, d, 3), "model.encoder.conv2.bias": r(d),
          "model.encoder.embed_positions.weight": r(cfg["max_source_positions"], d),
          "model.encoder.layer_norm.weight": torch.ones(d), "model.encoder.layer_norm.bias": torch.zeros(d),
          "model.decoder.embed_tokens.weight": r(10, d)}  # decoder weights are ignored
    for i in range(cfg["encoder_layers"]):
        p = f"model.encoder.layers.{i}."
        for name in ("q_proj", "v_proj", "out_proj"):
            st[p + f"self_attn.{name}.weight"], st[p + f"self_attn.{name}.bias"] = r(d, d), r(d)
        st[p + "self_attn.k_proj.weight"] = r(d, d)  # Whisper's k_proj has no bias
        st[p + "fc1.weight"], st[p + "fc1.bias"] = r(ff, d), r(ff)
        st[p + "fc2.weight"], st[p + "fc2.bias"] = r(d, ff), r(d)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            st[p + f"{ln}.weight"], st[p + f"{ln}.bias"] = torch.ones(d), torch.zeros(d)
    return st


def _folder(root: Path, cfg: dict, state: dict[str, torch.Tensor]) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in state.items()}, str(root / "model.safetensors"))
    return root


@pytest.mark.parametrize(("kind", "prefix"), [("wav2vec2", "wav2vec2."), ("hubert", "hubert."), ("wav2vec2", "")])
def test_wav2vec2_and_hubert(tmp_path: Path, kind: str, prefix: str) -> None:
    cfg = {**W2V, "model_type": kind}
    enc = load_speech_encoder(_folder(tmp_path / "ckpt", cfg, _w2v_state(cfg, prefix)))
    assert enc.kind == kind and enc.dim == 48
    t = np.arange(int(1.3 * 16000)) / 16000
    feats = enc.features(0.3 * np.sin(2 * np.pi * 200 * t))
    assert feats.shape == (33, 48) and np.isfinite(feats).all()  # ceil(1.3 × 25) video frames
    assert feats.std(0).mean() > 0


def test_whisper(tmp_path: Path) -> None:
    enc = load_speech_encoder(_folder(tmp_path / "w", WHISPER, _whisper_state(WHISPER)))
    feats = enc.features(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
    assert enc.kind == "whisper" and feats.shape == (25, 48) and np.isfinite(feats).all()


def test_weights_are_really_used(tmp_path: Path) -> None:
    a = load_speech_encoder(_folder(tmp_path / "a", W2V, _w2v_state(W2V, "wav2vec2.")))
    st = _w2v_state(W2V, "wav2vec2.")
    st["wav2vec2.encoder.layers.1.feed_forward.output_dense.bias"] += 1.0
    b = load_speech_encoder(_folder(tmp_path / "b", W2V, st))
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    assert not np.allclose(a.features(x), b.features(x))


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FaceAnimError, match="not a checkpoint folder"):
        load_speech_encoder(tmp_path / "none")
    pickle_only = tmp_path / "p"
    pickle_only.mkdir()
    (pickle_only / "config.json").write_text(json.dumps(W2V))
    (pickle_only / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(FaceAnimError, match="pickle"):
        load_speech_encoder(pickle_only)
    st = _w2v_state(W2V, "wav2vec2.")
    del st["wav2vec2.encoder.layers.0.attention.q_proj.weight"]
    with pytest.raises(FaceAnimError, match="lacks"):
        load_speech_encoder(_folder(tmp_path / "m", W2V, st))
    with pytest.raises(FaceAnimError, match="unsupported"):
        load_speech_encoder(_folder(tmp_path / "u", {"model_type": "bert"}, {"x": torch.zeros(1)}))
