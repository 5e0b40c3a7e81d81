"""VideoChat2 as a transformers `PreTrainedModel`: UMT encoder -> Q-Former -> Linear -> any causal LM.

    pixels (B, T, 3, H, W) --vision_model--> (B, T*grid*grid, Cv)            one joint attention over all frames
        --connector: queries + fixed instruction through InstructBlipQFormerModel, queries kept--> (B, Q, Cq)
        --connector.projection--> (B, Q, hidden)                               Q = 96 whatever the frame count
    prompt ids with Q placeholder tokens --embed_video--> inputs_embeds --language_model--> logits

The forward follows `hacalib.models.family`'s convention (input_ids + pixel_values_videos, or inputs_embeds;
attention_mask may be the packed 4-D mask; logits_to_keep) and returns the language model's output. The
placeholder id may lie beyond the language model's vocabulary (the converted Mistral keeps its 32,000 rows): its
rows are replaced by the video features, never looked up. `save_pretrained` / `from_pretrained` work offline.

May import: torch, transformers, `.configuration`, `.vision`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, InstructBlipQFormerModel, PreTrainedModel

from .configuration import VideoChat2Config
from .vision import UMTAttention, UMTBlock, UMTVisionModel

try:  # transformers >= 5 skips tensors it already loaded; plain torch init otherwise
    from transformers import initialization as _init
except ImportError:  # pragma: no cover
    _init = nn.init


class VideoChat2Connector(nn.Module):
    """The learned queries, the Q-Former that reads them with the instruction and the video, the projection."""

    def __init__(self, config: VideoChat2Config):
        super().__init__()
        width = config.qformer_config.hidden_size
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, width))
        self.qformer = InstructBlipQFormerModel(config.qformer_config)
        self.projection = nn.Linear(width, config.text_config.hidden_size)
        self.instruction_ids = list(config.qformer_instruction_ids)

    def forward(self, vision_states: torch.Tensor) -> torch.Tensor:
        b = vision_states.shape[0]
        queries = self.query_tokens.expand(b, -1, -1)
        ids = torch.tensor(self.instruction_ids, device=vision_states.device).expand(b, -1)
        # No masks: one unpadded instruction for every video, and every patch is real.
        out = self.qformer(input_ids=ids, query_embeds=queries, encoder_hidden_states=vision_states)
        return self.projection(out.last_hidden_state[:, : queries.shape[1]])


class VideoChat2PreTrainedModel(PreTrainedModel):
    config_class = VideoChat2Config
    config: VideoChat2Config
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["UMTBlock", "InstructBlipQFormerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VideoChat2Connector):
            _init.normal_(module.query_tokens, mean=0.0, std=std)
        elif isinstance(module, UMTAttention):
            # small random q/v biases rather than the original's zeros, so models built from scratch use them
            _init.normal_(module.q_bias, mean=0.0, std=std)
            _init.normal_(module.v_bias, mean=0.0, std=std)


class VideoChat2ForConditionalGeneration(VideoChat2PreTrainedModel, GenerationMixin):
    """VideoChat2: `vision_model`, `connector` (queries, Q-Former, projection), `language_model` (a CausalLM)."""

    def __init__(self, config: VideoChat2Config):
        super().__init__(config)
        self.vision_model = UMTVisionModel(config.vision_config)
        self.connector = VideoChat2Connector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    # ----------------------------------------------------------------- embeddings
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    # ----------------------------------------------------------------- video
    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, num_query_tokens, hidden): the video tokens as they enter the language model."""
        param = self.connector.query_tokens
        return self.connector(self.vision_model(pixel_values_videos.to(param.device, param.dtype)))

    def embed_video(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with each row's features at its placeholder positions (count checked per row)."""
        is_video = input_ids == self.config.video_token_id
        counts = is_video.sum(dim=1)
        if not bool((counts == features.shape[1]).all()):
            raise ValueError(f"rows hold {counts.tolist()} video placeholder tokens (id {self.config.video_token_id}) "
                             f"but each video has {features.shape[1]} features")
        embeds = self.get_input_embeddings()(input_ids.masked_fill(is_video, 0))  # placeholder id may be out of range
        return embeds.masked_scatter(is_video[..., None], features.to(embeds.device, embeds.dtype))

    def train(self, mode: bool = True) -> "VideoChat2ForConditionalGeneration":
        """As the original freezes them: a vision part with no trainable parameter stays in eval mode (no dropout),
        so frozen video features are deterministic (and cacheable) while the language model trains."""
        super().train(mode)
        if mode:
            for part in (self.vision_model, self.connector):
                if not any(p.requires_grad for p in part.parameters()):
                    part.eval()
        return self

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            if pixel_values_videos is not None:
                inputs_embeds = self.embed_video(input_ids, self.get_video_features(pixel_values_videos))
            elif bool((input_ids == self.config.video_token_id).any()):
                raise ValueError("input_ids hold video placeholder tokens but no pixel_values_videos were given")
            else:
                inputs_embeds = self.get_input_embeddings()(input_ids)
        # the key-value cache is `cache` in newer transformers releases, `past_key_values` before: pass what came
        if cache is not None:
            kwargs["cache"] = cache
        if past_key_values is not None:
            kwargs["past_key_values"] = past_key_values
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids, labels=labels,
            use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs,
        )

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, inputs_embeds: torch.Tensor | None = None,
                                      pixel_values_videos: torch.Tensor | None = None, **kwargs: Any):
        inputs = super().prepare_inputs_for_generation(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        ids = inputs.get("input_ids")
        # the video enters once: only while the step's tokens still hold its placeholders (the prefill)
        if pixel_values_videos is not None and ids is not None and bool((ids == self.config.video_token_id).any()):
            inputs["pixel_values_videos"] = pixel_values_videos
        return inputs


__all__ = ["UMTBlock", "VideoChat2Connector", "VideoChat2ForConditionalGeneration", "VideoChat2PreTrainedModel"]
