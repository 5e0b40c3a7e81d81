"""LoRA on the language model's projections only (not the vision side, not the projector), through peft.

The target modules and the regex that confines them to the language model come from the model's family.

May import: peft, torch, `hacalib.io`, `.family`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from ..errors import DataError
from ..io import atomic_dir
from .registry import family_of, get_family

DEFAULT_TARGETS = get_family("video_llava").lora_targets


def language_model_target_regex(targets: Sequence[str], family: str = "video_llava") -> str:
    """A peft `target_modules` regex (full match) for `targets` inside the language model of `family` only."""
    return get_family(family).lora_target_regex(targets)


def add_lora(
    model: nn.Module,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    targets: Sequence[str] | None = None,
    *,
    seed: int | None = None,
) -> PeftModel:
    """Wrap `model` with LoRA adapters on the language model's `targets`; everything else is frozen.

    Args:
        model: a model of a registered family (toy or 7B).
        r, alpha, dropout: LoRA rank, scaling numerator (scale = alpha / r) and dropout on the adapter input.
        targets: projection names inside the language model's layers (None: the family's defaults).
        seed: peft initialises the adapters from torch's global RNG; with a seed they are drawn from it inside a
            forked RNG (the caller's RNG state untouched), so a run's adapter init depends on its seed only.
    """
    family = family_of(model)
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=family.lora_target_regex(family.lora_targets if targets is None else targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    if seed is None:
        return get_peft_model(model, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def save_adapter(model: PeftModel, path: str | Path) -> Path:
    """Write only the adapter weights + adapter config into `path`, atomically."""
    with atomic_dir(path) as tmp:
        # The adapters never touch the embeddings; saying so stops peft from looking up the base model's config on
        # the hub (offline: a warning per save) to guess whether the vocabulary was resized.
        model.save_pretrained(tmp, save_embedding_layers=False)
    return Path(path)


def load_adapter(base_model: nn.Module, path: str | Path, is_trainable: bool = False) -> PeftModel:
    """Put the adapter saved at `path` on `base_model` (frozen unless `is_trainable`, e.g. to resume)."""
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(base_model, str(path), is_trainable=is_trainable)
    except SafetensorError as exc:  # a truncated or foreign weights file: say which folder, not only the library's words
        raise DataError(path, f"the adapter weights cannot be read ({exc}); delete the folder to train it again") \
            from exc
