"""Parity with the original VideoChat2 on random weights: a reference written from the original's equations.

The reference reads a state dict with the ORIGINAL key names and shapes (`original_checkpoint`, as
`video_chat2/models/blip2/vit.py`, `Qformer.py` and `videochat2_it_mistral.py` name their parameters) and computes:
- the UMT encoder as `vit.py` does: Conv3d patches, the sin-cos table built the original way (numpy, 4 frames,
  reshaped (4, grid, grid, C), `F.interpolate(mode='linear')` in time), blocks with a fused qkv whose bias is
  cat(q_bias, 0, v_bias), explicit softmax(q k^T * scale), then `vision_layernorm` (eps 1e-12);
- the Q-Former as `Qformer.py`'s BertModel does with `query_embeds`: [queries; word + position embeddings of the
  instruction] -> LayerNorm, per layer post-LN self-attention over all tokens, cross-attention to the video for
  the queries on every 2nd layer, the query FFN (`intermediate_query`/`output_query`) on the queries and the text
  FFN on the instruction; the queries' outputs through `mistral_proj`.
Our model gets the same weights through the converter's key map. Tolerances: float64 1e-10, float32 1e-5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import InstructBlipQFormerConfig, MistralConfig

from hacalib.models.videochat2 import VideoChat2Config, VideoChat2ForConditionalGeneration, VideoChat2VisionConfig
from hacalib.models.videochat2.convert import Assembly
from hacalib.models.videochat2.vision import video_position_table

# small shapes with the real structure: grid 4 (64-pixel frames, 16-pixel patches), 2 + 1 vision blocks (the last
# one is UMT's 24th, which VideoChat2 never runs), 4 Q-Former layers (cross-attention on 0 and 2), and the
# Q-Former's real vocabulary (so the bert-base-uncased instruction ids fit)
DIMS = dict(image=64, patch=16, c=32, heads=4, blocks=2, h=24, qheads=4, qlayers=4, vocab=30523, qpos=40,
            n_query=4, n_extra=2, text_hidden=40, text_vocab=60)
INSTRUCTION = [1, 7, 9, 11, 2]


def _randn(g, *shape, std=0.2, mean=0.0):
    return torch.randn(*shape, generator=g) * std + mean


def original_checkpoint(seed: int = 0, d: dict = DIMS) -> dict[str, dict[str, torch.Tensor]]:
    """Synthetic stage files in the original's key names and shapes: {"stage1": ..., "stage2": ..., "stage3": ...}."""
    g = torch.Generator().manual_seed(seed)
    c, h = d["c"], d["h"]

    def lin(prefix, out, inp, bias=True):
        sd = {f"{prefix}.weight": _randn(g, out, inp, std=1 / math.sqrt(inp))}
        if bias:
            sd[f"{prefix}.bias"] = _randn(g, out, std=0.1)
        return sd

    def ln(prefix, n):
        return {f"{prefix}.weight": _randn(g, n, std=0.1, mean=1.0), f"{prefix}.bias": _randn(g, n, std=0.1)}

    vision = {"vision_encoder.encoder.patch_embed.proj.weight": _randn(g, c, 3, 1, d["patch"], d["patch"], std=0.05),
              "vision_encoder.encoder.patch_embed.proj.bias": _randn(g, c, std=0.1)}
    for i in range(d["blocks"] + 1):
        b = f"vision_encoder.encoder.blocks.{i}"
        vision |= ln(f"{b}.norm1", c) | ln(f"{b}.norm2", c) | lin(f"{b}.attn.qkv", 3 * c, c, bias=False)
        vision |= {f"{b}.attn.q_bias": _randn(g, c, std=0.3), f"{b}.attn.v_bias": _randn(g, c, std=0.3)}
        vision |= lin(f"{b}.attn.proj", c, c) | lin(f"{b}.mlp.fc1", 4 * c, c) | lin(f"{b}.mlp.fc2", c, 4 * c)
    vision |= ln("vision_layernorm", c)
    q = {"qformer.bert.embeddings.word_embeddings.weight": _randn(g, d["vocab"], h, std=0.5),
         "qformer.bert.embeddings.position_embeddings.weight": _randn(g, d["qpos"], h, std=0.5),
         "qformer.bert.embeddings.position_ids": torch.arange(d["qpos"])[None]}
    q |= ln("qformer.bert.embeddings.LayerNorm", h)
    for i in range(d["qlayers"]):
        p = f"qformer.bert.encoder.layer.{i}"
        parts = ["attention"] + (["crossattention"] if i % 2 == 0 else [])
        for part in parts:
            width = c if part == "crossattention" else h
            q |= lin(f"{p}.{part}.self.query", h, h) | lin(f"{p}.{part}.self.key", h, width)
            q |= lin(f"{p}.{part}.self.value", h, width) | lin(f"{p}.{part}.output.dense", h, h)
            q |= ln(f"{p}.{part}.output.LayerNorm", h)
        for ffn, out in (("intermediate", "output"), ("intermediate_query", "output_query")):
            q |= lin(f"{p}.{ffn}.dense", 4 * h, h) | lin(f"{p}.{out}.dense", h, 4 * h) | ln(f"{p}.{out}.LayerNorm", h)
    q["qformer.cls.predictions.bias"] = torch.zeros(d["vocab"])  # dropped by the original (qformer.cls = None)
    queries = {"query_tokens": _randn(g, 1, d["n_query"], h, std=0.5)}
    proj = lin("mistral_proj", d["text_hidden"], h)
    stage1 = vision | q | queries
    stage2 = {"extra_query_tokens": _randn(g, 1, d["n_extra"], h, std=0.5)} | proj
    stage3 = {k: v + _randn(g, *v.shape, std=0.01) for k, v in (vision | q | queries | stage2).items()
              if v.is_floating_point()} | lin("mistral_proj", d["text_hidden"], h)
    return {"stage1": stage1, "stage2": stage2, "stage3": stage3}


def native_config(d: dict = DIMS) -> VideoChat2Config:
    vision = VideoChat2VisionConfig(image_size=d["image"], patch_size=d["patch"], hidden_size=d["c"],
                                    intermediate_size=4 * d["c"], num_attention_heads=d["heads"],
                                    num_hidden_layers=d["blocks"])
    qformer = InstructBlipQFormerConfig(vocab_size=d["vocab"], hidden_size=d["h"], num_hidden_layers=d["qlayers"],
                                        num_attention_heads=d["qheads"], intermediate_size=4 * d["h"],
                                        encoder_hidden_size=d["c"], max_position_embeddings=d["qpos"])
    text = MistralConfig(vocab_size=d["text_vocab"], hidden_size=d["text_hidden"], intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False)
    return VideoChat2Config(vision_config=vision, qformer_config=qformer, text_config=text,
                            num_query_tokens=d["n_query"] + d["n_extra"], qformer_instruction_ids=INSTRUCTION,
                            video_token_id=d["text_vocab"])


def native_from_original(files: dict, dtype=torch.float32) -> VideoChat2ForConditionalGeneration:
    """Our model with the vision side and connector read through the converter's key map (the LLM stays random)."""
    asm = Assembly(DIMS["blocks"])
    for label in ("stage1", "stage2", "stage3"):
        asm.apply(label, label, files[label])
    asm.finish_queries()
    torch.manual_seed(0)
    model = VideoChat2ForConditionalGeneration(native_config())
    missing, unexpected = model.load_state_dict(asm.state, strict=False)
    assert not unexpected and all(k.startswith("language_model.") for k in missing)
    return model.to(dtype).eval()


# ----------------------------------------------------------------------------- the reference


def original_position_table(n_position: int, d_hid: int, cur_frame: int, ckpt_num_frame: int = 4) -> torch.Tensor:
    """`vit.get_sinusoid_encoding_table` as the original computes it (numpy angles, then torch interpolation)."""
    def angles(pos):
        return [pos / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)]

    if cur_frame != ckpt_num_frame:
        n_position = n_position // cur_frame * ckpt_num_frame
    table = np.array([angles(p) for p in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    table = torch.tensor(table, dtype=torch.float).unsqueeze(0)
    if cur_frame == ckpt_num_frame:
        return table[0]
    t, p = ckpt_num_frame, int((n_position // ckpt_num_frame) ** 0.5)
    table = table.reshape(-1, t, p, p, d_hid).permute(0, 2, 3, 4, 1).reshape(-1, d_hid, t)
    table = F.interpolate(table, size=cur_frame, mode="linear")
    return table.reshape(1, p, p, d_hid, cur_frame).permute(0, 4, 1, 2, 3).flatten(1, 3)[0]


def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], eps)


def _lin(x, sd, prefix):
    return F.linear(x, sd[f"{prefix}.weight"], sd.get(f"{prefix}.bias"))


def reference_vision(sd: dict, pixels: torch.Tensor, d: dict = DIMS) -> torch.Tensor:
    """pixels (B, T, 3, H, W) -> (B, T*N, C) after `vision_layernorm`, from the original's equations."""
    b, t = pixels.shape[:2]
    x = F.conv3d(pixels.permute(0, 2, 1, 3, 4), sd["vision_encoder.encoder.patch_embed.proj.weight"],
                 sd["vision_encoder.encoder.patch_embed.proj.bias"], stride=(1, d["patch"], d["patch"]))
    x = x.flatten(2).transpose(1, 2)
    n = x.shape[1]
    x = x + original_position_table(n, d["c"], t).to(x.dtype)
    heads = d["heads"]
    for i in range(d["blocks"]):  # VideoChat2 runs depth + return_index + 1 blocks: not the last one
        p = f"vision_encoder.encoder.blocks.{i}"
        h = _ln(x, sd, f"{p}.norm1", 1e-6)
        bias = torch.cat([sd[f"{p}.attn.q_bias"], torch.zeros_like(sd[f"{p}.attn.v_bias"]), sd[f"{p}.attn.v_bias"]])
        qkv = F.linear(h, sd[f"{p}.attn.qkv.weight"], bias).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (d["c"] // heads) ** -0.5, qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = x + _lin((a @ v).transpose(1, 2).reshape(b, n, -1), sd, f"{p}.attn.proj")
        x = x + _lin(F.gelu(_lin(_ln(x, sd, f"{p}.norm2", 1e-6), sd, f"{p}.mlp.fc1")), sd, f"{p}.mlp.fc2")
    return _ln(x, sd, "vision_layernorm", 1e-12)


def _bert_attention(x, kv, sd, p, heads):
    b, n, h = x.shape
    split = lambda y: y.view(b, -1, heads, h // heads).permute(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(_lin(x, sd, f"{p}.self.query")), split(_lin(kv, sd, f"{p}.self.key")), split(_lin(kv, sd, f"{p}.self.value"))
    probs = (q @ k.transpose(-1, -2) / math.sqrt(h // heads)).softmax(dim=-1)
    ctx = (probs @ v).permute(0, 2, 1, 3).reshape(b, n, h)
    return _ln(_lin(ctx, sd, f"{p}.output.dense") + x, sd, f"{p}.output.LayerNorm", 1e-12)


def _bert_ffn(x, sd, p, inter, out):
    return _ln(_lin(F.gelu(_lin(x, sd, f"{p}.{inter}.dense")), sd, f"{p}.{out}.dense") + x, sd, f"{p}.{out}.LayerNorm", 1e-12)


def reference_qformer(sd: dict, vision: torch.Tensor, d: dict = DIMS, layers: int | None = None,
                      instruction: list[int] = INSTRUCTION) -> torch.Tensor:
    """The queries' outputs (B, Q, h) of `qformer.bert(instruction, query_embeds=..., encoder_hidden_states=...)`."""
    b = vision.shape[0]
    queries = torch.cat([sd["query_tokens"], sd["extra_query_tokens"]], dim=1).expand(b, -1, -1)
    ids = torch.tensor(instruction)[None].expand(b, -1)
    text = sd["qformer.bert.embeddings.word_embeddings.weight"][ids]
    text = text + sd["qformer.bert.embeddings.position_embeddings.weight"][: ids.shape[1]]
    x = _ln(torch.cat([queries, text], dim=1), sd, "qformer.bert.embeddings.LayerNorm", 1e-12)
    nq = queries.shape[1]
    for i in range(d["qlayers"] if layers is None else layers):
        p = f"qformer.bert.encoder.layer.{i}"
        a = _bert_attention(x, x, sd, f"{p}.attention", d["qheads"])
        qa = a[:, :nq]
        if i % 2 == 0:
            qa = _bert_attention(qa, vision, sd, f"{p}.crossattention", d["qheads"])
        x = torch.cat([_bert_ffn(qa, sd, p, "intermediate_query", "output_query"),
                       _bert_ffn(a[:, nq:], sd, p, "intermediate", "output")], dim=1)
    return x[:, :nq]


def effective(files: dict, dtype=torch.float32) -> dict:
    """The original's parameters after its non-strict loads: later files override earlier ones."""
    sd = {}
    for label in ("stage1", "stage2", "stage3"):
        sd.update(files[label])
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}


# ----------------------------------------------------------------------------- the parity tests


@pytest.mark.parametrize("frames", [4, 8, 16])
def test_position_table_matches_the_original_at_umt_l_size(frames):
    ours = video_position_table(1024, 14, frames, 4)
    theirs = original_position_table(196 * frames, 1024, frames)
    assert ours.shape == theirs.shape == (196 * frames, 1024)
    assert float((ours - theirs).abs().max()) <= 1e-6  # measured 0 (same float32 rounding of the same values)


@pytest.mark.parametrize("frames", [4, 8, 16])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_vision_encoder_matches_the_original_equations(frames, dtype, tol):
    files = original_checkpoint()
    model = native_from_original(files, dtype)
    pixels = torch.randn(2, frames, 3, DIMS["image"], DIMS["image"], generator=torch.Generator().manual_seed(frames), dtype=dtype)
    with torch.no_grad():
        ours = model.vision_model(pixels)
        theirs = reference_vision(effective(files, dtype), pixels)
    assert ours.shape == (2, frames * 16, DIMS["c"])
    assert float((ours - theirs).abs().max()) <= tol


@pytest.mark.parametrize("layers", [1, 2, 4])
def test_qformer_matches_the_original_equations(layers):
    """One layer (self + cross-attention), two (a layer without cross-attention), all four; float64, 1e-10."""
    files = original_checkpoint()
    model = native_from_original(files, torch.float64)
    sd = effective(files, torch.float64)
    vision = torch.randn(2, 48, DIMS["c"], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    qformer = model.connector.qformer
    keep = qformer.encoder.layer
    qformer.encoder.layer = keep[:layers]
    qformer.config.num_hidden_layers = layers
    try:
        with torch.no_grad():
            ids = torch.tensor(INSTRUCTION)[None].expand(2, -1)
            out = qformer(input_ids=ids, query_embeds=model.connector.query_tokens.expand(2, -1, -1),
                          encoder_hidden_states=vision).last_hidden_state[:, :6]
    finally:
        qformer.encoder.layer, qformer.config.num_hidden_layers = keep, len(keep)
    assert float((out - reference_qformer(sd, vision, layers=layers)).abs().max()) <= 1e-10


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_video_features_match_the_original_end_to_end(dtype, tol):
    files = original_checkpoint()
    model = native_from_original(files, dtype)
    sd = effective(files, dtype)
    pixels = torch.randn(2, 8, 3, DIMS["image"], DIMS["image"], generator=torch.Generator().manual_seed(3), dtype=dtype)
    with torch.no_grad():
        ours = model.get_video_features(pixels)
        theirs = _lin(reference_qformer(sd, reference_vision(sd, pixels)), sd, "mistral_proj")
    assert ours.shape == (2, 6, DIMS["text_hidden"])
    assert float((ours - theirs).abs().max()) <= tol


def test_our_encoder_keeps_the_original_bias_layout_whatever_transformers_videomae_does():
    """Why the UMT encoder is ours: VideoMAE's attention-bias parameters differ between transformers releases
    (q/v only in some, q/k/v in others); this records the installed release's names beside our fixed ones."""
    from transformers import VideoMAEConfig, VideoMAEModel

    mae = VideoMAEModel(VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=1, hidden_size=32,
                                       num_hidden_layers=1, num_attention_heads=4, intermediate_size=64))
    mae_attn = sorted(n.split("attention.attention.")[1] for n, _ in mae.named_parameters() if "attention.attention." in n)
    assert "query.weight" in mae_attn and "key.weight" in mae_attn  # separate projections, names by release
    ours = sorted(n.split("attn.")[1] for n, _ in native_from_original(original_checkpoint()).named_parameters()
                  if n.startswith("vision_model.layers.0.attn."))
    assert ours == ["proj.bias", "proj.weight", "q_bias", "qkv.weight", "v_bias"]  # no key bias, as the original
