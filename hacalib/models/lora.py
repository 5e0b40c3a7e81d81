"""LoRA on the language model's projections only (not the CLIP towers, not the projector), through peft."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from ..io import atomic_dir

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def language_model_target_regex(targets: Sequence[str]) -> str:
    """A peft `target_modules` regex (full match) for `targets` inside `...language_model...` only.

    CLIP's attention also has `q_proj/k_proj/v_proj`, so bare names would put adapters on the vision tower.
    """
    if not targets:
        raise ValueError("LoRA needs at least one target module name")
    names = "|".join(re.escape(t) for t in targets)
    return rf"(?:.*\.)?language_model\..*\.(?:{names})"


def add_lora(
    model: nn.Module,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    targets: Sequence[str] = DEFAULT_TARGETS,
) -> PeftModel:
    """Wrap `model` with LoRA adapters on the language model's `targets`; everything else is frozen.

    Args:
        model: a `VideoLlavaForConditionalGeneration` (toy or 7B).
        r, alpha, dropout: LoRA rank, scaling numerator (scale = alpha / r) and dropout on the adapter input.
        targets: projection names inside the Llama layers.
    Note: peft initialises the adapters with torch's global RNG; seed it before calling for reproducible runs.
    """
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=language_model_target_regex(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def save_adapter(model: PeftModel, path: str | Path) -> Path:
    """Write only the adapter weights + adapter config into `path`, atomically."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
    return Path(path)


def load_adapter(base_model: nn.Module, path: str | Path, is_trainable: bool = False) -> PeftModel:
    """Put the adapter saved at `path` on `base_model` (frozen unless `is_trainable`, e.g. to resume)."""
    return PeftModel.from_pretrained(base_model, str(path), is_trainable=is_trainable)
