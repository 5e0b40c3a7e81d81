"""Original VideoChat2 checkpoint keys -> our parameter names (the recipe of transformers' InstructBLIP conversion
for the Q-Former; our own names for the UMT encoder and the connector).

| original (`video_chat2/models/...`)                         | ours                                             |
|--------------------------------------------------------------|--------------------------------------------------|
| vision_encoder.encoder.patch_embed.proj.*                    | vision_model.patch_embedding.*                   |
| vision_encoder.encoder.blocks.{i}.{norm1,attn.*,norm2,mlp.*} | vision_model.layers.{i}.(same)                   |
| vision_layernorm.*                                           | vision_model.post_layernorm.*                    |
| query_tokens, extra_query_tokens                             | connector.query_tokens (rows 0..31, 32..95)      |
| qformer.bert.embeddings.LayerNorm.*                          | connector.qformer.embeddings.layernorm.*         |
| qformer.bert.{embeddings,encoder}.* (`.self.` -> `.attention.`) | connector.qformer.(same)                      |
| mistral_proj.*                                               | connector.projection.*                           |
| mistral_model.base_model.model.X(.base_layer).weight         | language_model.X.weight                          |
| mistral_model.base_model.model.X.lora_{A,B}.default.weight   | merged into language_model.X.weight              |
| mistral_model.X                                              | language_model.X                                 |

Keys the original itself drops when it loads non-strictly are ignored with the reason recorded: blocks beyond the
ones VideoChat2 runs (UMT-L has 24, VideoChat2 builds 23), the encoder's own final norm (VideoChat2 builds it as
Identity), the Q-Former's LM head (`qformer.cls`, set to None) and its `position_ids` buffer. Any other key is an
error that names it.

May import: nothing of hacalib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VISION_BLOCK = re.compile(r"vision_encoder\.encoder\.blocks\.(\d+)\."
                           r"(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")
_VISION_BIAS = re.compile(r"vision_encoder\.encoder\.blocks\.(\d+)\.attn\.(q_bias|v_bias)$")
_QFORMER = re.compile(r"qformer\.bert\.(embeddings\.(?:word_embeddings|position_embeddings)\.weight|"
                      r"encoder\.layer\.\d+\.(?:attention|crossattention)\."
                      r"(?:self\.(?:query|key|value)|output\.(?:dense|LayerNorm))\.(?:weight|bias)|"
                      r"encoder\.layer\.\d+\.(?:intermediate|intermediate_query)\.dense\.(?:weight|bias)|"
                      r"encoder\.layer\.\d+\.(?:output|output_query)\.(?:dense|LayerNorm)\.(?:weight|bias))$")
_LORA = re.compile(r"mistral_model\.base_model\.model\.(.+)\.lora_([AB])\.(?:default\.)?weight$")
LLM_PREFIXES = ("mistral_model.base_model.model.", "mistral_model.")


@dataclass(frozen=True)
class Mapped:
    """Where one original key goes.

    kind: "param" (`target` gets the tensor), "query" / "extra_query" (rows of `connector.query_tokens`),
        "lora" (`target` is the adapted module's weight, `lora` is "A" or "B"), "ignored" (`reason` says why).
    """

    kind: str
    target: str = ""
    lora: str = ""
    reason: str = ""


def map_key(key: str, num_vision_layers: int) -> Mapped | None:
    """Our name for an original key, or None when nothing maps it (the caller's error names the key)."""
    if m := _VISION_BLOCK.match(key):
        block = int(m.group(1))
        if block >= num_vision_layers:
            return Mapped("ignored", reason=f"block {block}: VideoChat2 runs only the first {num_vision_layers} blocks")
        return Mapped("param", f"vision_model.layers.{block}.{m.group(2)}.{m.group(3)}")
    if m := _VISION_BIAS.match(key):
        block = int(m.group(1))
        if block >= num_vision_layers:
            return Mapped("ignored", reason=f"block {block}: VideoChat2 runs only the first {num_vision_layers} blocks")
        return Mapped("param", f"vision_model.layers.{block}.attn.{m.group(2)}")
    if m := re.fullmatch(r"vision_encoder\.encoder\.patch_embed\.proj\.(weight|bias)", key):
        return Mapped("param", f"vision_model.patch_embedding.{m.group(1)}")
    if m := re.fullmatch(r"vision_layernorm\.(weight|bias)", key):
        return Mapped("param", f"vision_model.post_layernorm.{m.group(1)}")
    if re.fullmatch(r"vision_encoder\.encoder\.norm\.(weight|bias)", key):
        return Mapped("ignored", reason="the encoder's own final norm: VideoChat2 builds it as Identity (with_ln=False)")
    if key == "query_tokens":
        return Mapped("query", "connector.query_tokens")
    if key == "extra_query_tokens":
        return Mapped("extra_query", "connector.query_tokens")
    if key == "qformer.bert.embeddings.position_ids":
        return Mapped("ignored", reason="a buffer (arange), rebuilt by the Q-Former")
    if key.startswith("qformer.cls."):
        return Mapped("ignored", reason="the Q-Former's LM head: VideoChat2 sets qformer.cls = None")
    if key.startswith("qformer.bert.embeddings.LayerNorm."):
        return Mapped("param", "connector.qformer.embeddings.layernorm." + key.rsplit(".", 1)[1])
    if _QFORMER.match(key):
        ours = key[len("qformer.bert."):].replace(".self.", ".attention.")
        return Mapped("param", "connector.qformer." + ours)
    if m := re.fullmatch(r"mistral_proj\.(weight|bias)", key):
        return Mapped("param", f"connector.projection.{m.group(1)}")
    if m := _LORA.match(key):
        return Mapped("lora", f"language_model.{m.group(1)}.weight", lora=m.group(2))
    for prefix in LLM_PREFIXES:
        if key.startswith(prefix):
            return Mapped("param", "language_model." + key[len(prefix):].replace(".base_layer.", "."))
    return None
