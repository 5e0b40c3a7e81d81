"""The model-family interface: everything model-specific that the rest of hacalib needs, behind one object.

Packing, scoring, training, generation and the feature cache never name a model's classes or attributes; they
ask the model's family (`hacalib.models.registry.family_of(model)`), as lm-eval's evaluator asks its backend for
`loglikelihood` without knowing which backend it is. A second Video-LLM is a second module with one
`VideoLLMFamily` subclass, listed in `hacalib.models.registry`; nothing outside `hacalib.models` changes.

A family's models follow one forward convention, so the training loop can call them without asking:
`model(input_ids=..., pixel_values_videos=..., attention_mask=..., position_ids=..., logits_to_keep=...)`
(or `inputs_embeds=` instead of `input_ids` + pixels) returns an output with `.logits`.

May import: torch, transformers, `hacalib.prompts`. Imported by everything that runs a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..prompts import ChatTemplate


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP (`.module`) and peft wrappers (LoRA layers stay in place)."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class VideoLLMFamily:
    """One Video-LLM family. Subclasses implement every method; each is one line of the contract.

    Attributes:
        name: the family's key in `FAMILIES` (also what a preset names).
        model_type: the `model_type` its configs carry (how a saved folder is recognised).
        template: the chat template (entailment, correction, masking, QA and caption prompts, answer separator,
            video placeholder); versioned in `hacalib.prompts`.
        lora_targets: default LoRA target module names inside the language model.
    """

    name: str = ""
    model_type: str = ""
    template: ChatTemplate
    lora_targets: tuple[str, ...] = ()

    # -------------------------------------------------------------- identity
    def owns(self, obj: Any) -> bool:
        """Whether `obj` (a model, peft/DDP wrapper, config or processor) belongs to this family."""
        raise NotImplementedError

    # -------------------------------------------------------------- load / save
    def load(self, name_or_path: str, *, revision: str | None, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
        """(model, processor) with `from_pretrained` from a hub id or a folder written by `save`."""
        raise NotImplementedError

    def save(self, model: torch.nn.Module, processor: Any, path: Path) -> None:
        """Write model + processor into the (empty, temporary) folder `path` (`save_pretrained`)."""
        raise NotImplementedError

    # -------------------------------------------------------------- video in
    def num_video_tokens(self, processor: Any, num_frames: int) -> int:
        """How many placeholder tokens (and so video features) one video of `num_frames` frames takes."""
        raise NotImplementedError

    def preprocess(self, processor: Any, videos: Sequence[Any]) -> torch.Tensor:
        """Decoded frames (each (T, H, W, 3) uint8) -> pixel tensor (B, T, 3, H, W) float32 (the processor)."""
        raise NotImplementedError

    def video_features(self, model: torch.nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(n_videos, tokens per video, hidden): the video features as they enter the language model."""
        raise NotImplementedError

    def vision_modules(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        """The modules `video_features` depends on (frozen check and fingerprint of the feature cache)."""
        raise NotImplementedError

    def embed_video(self, model: torch.nn.Module, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, L, hidden) with each row's video features at its placeholder positions."""
        raise NotImplementedError

    def set_pretraining_trainable(self, model: torch.nn.Module) -> None:
        """requires_grad on exactly the parameters a video forward uses (training from scratch; DDP needs it)."""
        raise NotImplementedError

    # -------------------------------------------------------------- language model
    def language_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The causal-LM body: called with inputs_embeds, a 4-D attention mask and position_ids."""
        raise NotImplementedError

    def lm_head(self, model: torch.nn.Module) -> torch.nn.Module:
        """The output projection hidden -> vocabulary."""
        raise NotImplementedError

    def attn_implementation(self, model: torch.nn.Module) -> str:
        """The language model's attention implementation ('sdpa', 'eager', 'flex_attention')."""
        raise NotImplementedError

    def generate(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 features: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """`model.generate` with precomputed video features (B, tokens per video, hidden), one row per prompt."""
        raise NotImplementedError

    # -------------------------------------------------------------- LoRA
    def lora_target_regex(self, targets: Sequence[str]) -> str:
        """A peft `target_modules` regex that puts adapters on `targets` inside the language model only."""
        raise NotImplementedError
