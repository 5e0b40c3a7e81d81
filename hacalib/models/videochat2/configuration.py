"""VideoChat2's configuration: a UMT video encoder, an InstructBLIP-style Q-Former and any causal LM.

`VideoChat2VisionConfig` describes the UMT-L/16 encoder as VideoChat2 runs it (23 of UMT-L's 24 blocks, no CLS,
a fixed sin-cos position table built for `position_frames` frames and interpolated in time); `VideoChat2Config`
holds it, the Q-Former's `InstructBlipQFormerConfig`, the language model's config (Mistral for the paper,
a tiny Llama in the tests), the number of query tokens and the Q-Former's fixed instruction. Defaults are
the paper checkpoint's (`OpenGVLab/VideoChat2_stage3_Mistral_7B`).

May import: transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import CONFIG_MAPPING, AutoConfig, InstructBlipQFormerConfig, PretrainedConfig

# The instruction the stage-3 demo gives the Q-Former for videos, and its ids in bert-base-uncased
# ([CLS] watch the video and answer the question . [SEP]); see docs/videochat2.md ("Q-Former instruction").
DEFAULT_INSTRUCTION = "Watch the video and answer the question."
DEFAULT_INSTRUCTION_IDS = (101, 3422, 1996, 2678, 1998, 3437, 1996, 3160, 1012, 102)
# bert-base-uncased plus the `[DEC]` token the original adds to the Q-Former's tokenizer
QFORMER_VOCAB_SIZE = 30523


class VideoChat2VisionConfig(PretrainedConfig):
    """The UMT video encoder.

    Args:
        image_size: frame side the encoder sees (224); the patch grid is image_size // patch_size per side.
        patch_size: side of the square patches (Conv3d kernel (1, patch, patch): one frame per tubelet).
        num_channels: input channels.
        hidden_size, intermediate_size, num_attention_heads: block width, MLP width, heads (UMT-L: 1024, 4096, 16).
        num_hidden_layers: blocks actually run (VideoChat2 runs the first 23 of UMT-L's 24).
        layer_norm_eps: the blocks' LayerNorm eps (1e-6).
        post_layernorm_eps: the LayerNorm after the last block (VideoChat2's `vision_layernorm`, 1e-12).
        position_frames: frames the fixed sin-cos table is built for (UMT was pretrained on 4); other frame
            counts interpolate it linearly along time.
        initializer_range: std of the random initialisation (only for models built from scratch).
    """

    model_type = "hacalib_videochat2_vision"
    base_config_key = "vision_config"

    def __init__(self, image_size: int = 224, patch_size: int = 16, num_channels: int = 3, hidden_size: int = 1024,
                 intermediate_size: int = 4096, num_attention_heads: int = 16, num_hidden_layers: int = 23,
                 layer_norm_eps: float = 1e-6, post_layernorm_eps: float = 1e-12, position_frames: int = 4,
                 initializer_range: float = 0.02, **kwargs: Any):
        if hidden_size % num_attention_heads or hidden_size % 2:
            raise ValueError(f"hidden_size {hidden_size} must be even and divisible by num_attention_heads "
                             f"{num_attention_heads}")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_attention_heads = num_attention_heads
        self.num_hidden_layers = num_hidden_layers
        self.layer_norm_eps = layer_norm_eps
        self.post_layernorm_eps = post_layernorm_eps
        self.position_frames = position_frames
        self.initializer_range = initializer_range
        super().__init__(**kwargs)


def _text_config(text_config: Any) -> PretrainedConfig:
    if text_config is None:
        return CONFIG_MAPPING["mistral"]()
    if isinstance(text_config, dict):
        data = dict(text_config)
        model_type = data.pop("model_type", None)
        if model_type is None:
            raise ValueError("text_config needs a model_type (e.g. 'mistral', 'llama')")
        return CONFIG_MAPPING[model_type](**data)
    return text_config


class VideoChat2Config(PretrainedConfig):
    """VideoChat2 = UMT encoder -> Q-Former (query tokens + fixed instruction) -> Linear -> causal LM.

    Args:
        vision_config: `VideoChat2VisionConfig` (or its dict).
        qformer_config: `InstructBlipQFormerConfig` (or its dict); its `encoder_hidden_size` must equal the vision
            width. Default: BERT-base with cross-attention every 2nd layer, the original's vocabulary (30,523).
        text_config: the language model's config (or its dict with `model_type`); default Mistral-7B's.
        num_query_tokens: learned queries, and so video tokens per video whatever the frame count (32 + 64).
        qformer_instruction: the fixed text the Q-Former reads beside the queries (for provenance).
        qformer_instruction_ids: its ids in the Q-Former's vocabulary ([CLS] ... [SEP]); one fixed instruction
            keeps a video's tokens the same for every caption, so packed prefix sharing applies.
        video_token_id: the placeholder id in the language model's tokenizer (often beyond the embedding
            matrix: its rows are replaced by video features and never looked up).
    """

    model_type = "hacalib_videochat2"
    sub_configs = {"vision_config": VideoChat2VisionConfig, "qformer_config": InstructBlipQFormerConfig,
                   "text_config": AutoConfig}

    def __init__(self, vision_config: Any = None, qformer_config: Any = None, text_config: Any = None,
                 num_query_tokens: int = 96, qformer_instruction: str = DEFAULT_INSTRUCTION,
                 qformer_instruction_ids: Any = DEFAULT_INSTRUCTION_IDS, video_token_id: int = 32000,
                 initializer_range: float = 0.02, **kwargs: Any):
        if isinstance(vision_config, dict):
            vision_config = VideoChat2VisionConfig(**vision_config)
        self.vision_config = vision_config or VideoChat2VisionConfig()
        if isinstance(qformer_config, dict):
            qformer_config = InstructBlipQFormerConfig(**qformer_config)
        self.qformer_config = qformer_config or InstructBlipQFormerConfig(
            vocab_size=QFORMER_VOCAB_SIZE, encoder_hidden_size=self.vision_config.hidden_size)
        if self.qformer_config.encoder_hidden_size != self.vision_config.hidden_size:
            raise ValueError(f"qformer_config.encoder_hidden_size ({self.qformer_config.encoder_hidden_size}) must equal "
                             f"the vision width ({self.vision_config.hidden_size})")
        self.text_config = _text_config(text_config)
        if num_query_tokens < 1:
            raise ValueError(f"num_query_tokens must be >= 1, got {num_query_tokens}")
        ids = [int(i) for i in qformer_instruction_ids]
        if not ids or max(ids) >= self.qformer_config.vocab_size or min(ids) < 0:
            raise ValueError(f"qformer_instruction_ids must be non-empty ids below the Q-Former vocabulary "
                             f"({self.qformer_config.vocab_size}), got {ids}")
        self.num_query_tokens = num_query_tokens
        self.qformer_instruction = qformer_instruction
        self.qformer_instruction_ids = ids
        self.video_token_id = int(video_token_id)
        self.initializer_range = initializer_range
        kwargs.setdefault("tie_word_embeddings", getattr(self.text_config, "tie_word_embeddings", False))
        super().__init__(**kwargs)
