"""VideoChat2 behind `VideoLLMFamily`: the only place hacalib's shared code reaches VideoChat2's internals from.

Packing, scoring and training see the same contract as for Video-LLaVA: a fixed number of video tokens (the
query count, 96, whatever the frame count), features computed once per video, a causal-LM body and head.

May import: torch, transformers, `hacalib.prompts`, `..family`, this package's modules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ... import prompts
from ..family import VideoLLMFamily, unwrap
from .configuration import VideoChat2Config
from .modeling import VideoChat2ForConditionalGeneration
from .processing import VideoChat2Processor, check_prompt_tokenization


class VideoChat2Family(VideoLLMFamily):
    name = "videochat2"
    model_type = VideoChat2Config.model_type
    template = prompts.VIDEOCHAT2
    # The language model's projections, as for Video-LLaVA; the original's stage 3 also adapts `lm_head`
    # (add it to `targets` to follow it; docs/videochat2.md, "What is trained").
    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def owns(self, obj: Any) -> bool:
        if isinstance(obj, (VideoChat2Processor, VideoChat2Config)):
            return True
        config = getattr(unwrap(obj), "config", None) if isinstance(obj, torch.nn.Module) else None
        return getattr(config, "model_type", None) == self.model_type

    def load(self, name_or_path: str, *, revision: str | None, dtype: torch.dtype):
        if not Path(name_or_path).is_dir():
            raise FileNotFoundError(f"{name_or_path}: VideoChat2 loads from a local folder written by "
                                    "`haca convert-videochat2` (the original checkpoints are not in transformers format)")
        model = VideoChat2ForConditionalGeneration.from_pretrained(name_or_path, dtype=dtype)
        processor = VideoChat2Processor.from_pretrained(name_or_path)
        # a tokenizer that reloads differently would shift every prompt: refuse it here, not in a table
        check_prompt_tokenization(processor.tokenizer, self.template, processor.num_video_tokens)
        return model, processor

    def save(self, model: torch.nn.Module, processor: Any, path: Path) -> None:
        model.save_pretrained(path)
        processor.save_pretrained(path)

    def num_video_tokens(self, processor: Any, num_frames: int) -> int:
        return processor.num_video_tokens  # the Q-Former's queries: independent of the frame count

    def preprocess(self, processor: Any, videos: Sequence[Any]) -> torch.Tensor:
        return processor.preprocess(videos)

    def video_features(self, model: torch.nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return unwrap(model).get_video_features(pixel_values_videos)

    def vision_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        base = unwrap(model)
        return [base.vision_model, base.connector]

    def embed_video(self, model: torch.nn.Module, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return unwrap(model).embed_video(input_ids, features)

    def set_pretraining_trainable(self, model: torch.nn.Module) -> None:
        model.requires_grad_(True)
        # Only the queries' outputs leave the Q-Former, so the instruction tokens' feed-forward in its last layer
        # gets no gradient (DDP refuses trained parameters without one).
        last = model.connector.qformer.encoder.layer[-1]
        last.intermediate.requires_grad_(False)
        last.output.requires_grad_(False)

    def language_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return unwrap(model).language_model.get_decoder()

    def lm_head(self, model: torch.nn.Module) -> torch.nn.Module:
        return unwrap(model).language_model.get_output_embeddings()

    def attn_implementation(self, model: torch.nn.Module) -> str:
        return unwrap(model).language_model.config._attn_implementation

    def generate(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 features: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        embeds = self.embed_video(model, input_ids, features)
        new = model.generate(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)
        # from embeddings alone, generate returns only the new tokens; callers slice the prompt off
        return torch.cat([input_ids, new.to(input_ids.device)], dim=1)

    def lora_target_regex(self, targets: Sequence[str]) -> str:
        """Full match inside `language_model` only (the vision side has its own `proj`, `qkv`, `query`...);
        `lm_head` sits directly under it."""
        if not targets:
            raise ValueError("LoRA needs at least one target module name")
        names = "|".join(re.escape(t) for t in targets)
        return rf"(?:.*\.)?language_model\.(?:.*\.)?(?:{names})"


VIDEOCHAT2 = VideoChat2Family()
