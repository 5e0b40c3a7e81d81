"""The training loss: next-token cross-entropy on the target tokens only, for padded and for packed batches.

Loss reduction (`TrainConfig.loss_reduction`), the choice HACA's comparison may hinge on:
- 'token': mean cross-entropy over all target tokens of the micro-batch. An example weighs as much as it
  has target tokens: HACA's `No, <correction>` (~14 tokens) outweighs a `Yes` (1 token + EOS), and the
  deciding `No` is 1 of ~14 tokens, while for the entailment target it is 1 of 2.
- 'sequence': mean cross-entropy per example, then mean over examples. Every example weighs the same,
  so the Yes/No token of a correction example carries ~1/14 of its example's weight.

Batches come either padded, one example per row with HF-convention `labels` (`pad_collate`), or packed,
one video per row with its examples as segments behind the shared prefix and targets already aligned
(`hacalib.training.collate.packed_collate`); the loss is the same either way (tested).

May import: torch, `hacalib.models` (IGNORE_INDEX).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..models import IGNORE_INDEX


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token") -> torch.Tensor:
    """Next-token cross-entropy on the target tokens only (labels != -100), computed in float32.

    Args:
        logits: (batch, seq, vocab) model output.
        labels: (batch, seq) token ids aligned with the input (HF convention: position t is predicted
            from positions < t), -100 where there is no target.
        reduction: 'token' (mean over all target tokens) or 'sequence' (mean per example, then over
            the examples that have targets); see the module docstring.
    """
    return target_loss(logits, *_shifted(labels), reduction)


def target_loss(logits: torch.Tensor, targets: torch.Tensor, examples: torch.Tensor, reduction: str = "token") -> torch.Tensor:
    """Cross-entropy of the logits at every position that has a target, computed in float32.

    Args:
        logits: (batch, seq, vocab).
        targets: (batch, seq) the token each position's logits must predict, -100 where none (already
            shifted: packed sequences are not plain shifts of their input).
        examples: (batch, seq) the example each target belongs to (a row, or a packed segment).
        reduction: 'token' (mean over target tokens) or 'sequence' (mean per example, then over examples).
    """
    mask = targets != IGNORE_INDEX
    if not mask.any():
        raise ValueError("batch has no target tokens (every label is -100)")
    # Select the target rows before the float32 upcast: the full logits tensor can be GBs at 7B scale.
    ce = F.cross_entropy(logits[mask].float(), targets[mask], reduction="none")
    if reduction == "token":
        return ce.mean()
    if reduction == "sequence":
        _, example = examples[mask].unique(return_inverse=True)
        sums = torch.zeros(int(example.max()) + 1, device=ce.device).index_add_(0, example, ce)
        return (sums / torch.bincount(example)).mean()
    raise ValueError(f"loss_reduction must be 'token' or 'sequence', got {reduction!r}")


def batch_loss(model: torch.nn.Module, batch: dict[str, Any], reduction: str = "token", *,
               vision_cache: Any = None) -> torch.Tensor:
    """The loss of one collated micro-batch (tensors already on the model's device).

    Padded batches (`labels`) take the plain forward and full logits. Packed batches (`target_labels`,
    `target_segments`) get logits only at the columns that hold a target (`logits_to_keep`: the video
    prefix never reaches the lm_head), and with `vision_cache` and `video_keys` the video features come from
    the cache instead of the vision tower (`hacalib.training.feature_cache`).

    Args:
        model: the model being trained (peft / accelerate wrappers included).
        batch: a collate_fn's output (see `train`), optionally with `video_keys` and `pixel_rows` (popped here).
        reduction: 'token' or 'sequence' (see `target_loss`).
        vision_cache: a `VisionFeatureCache`, only valid while the vision side is frozen (`train` checks it).
    """
    batch = dict(batch)
    keys = batch.pop("video_keys", None)
    pixel_rows = batch.pop("pixel_rows", None)  # set when some rows' pixels were skipped (features cached)
    if pixel_rows is not None and (vision_cache is None or keys is None):
        raise ValueError("the batch lacks some videos' pixels (their features were cached) but no feature cache is used")
    if "target_labels" not in batch:
        targets, examples = _shifted(batch.pop("labels"))
        return target_loss(model(**batch).logits, targets, examples, reduction)
    targets, examples = batch.pop("target_labels"), batch.pop("target_segments")
    if vision_cache is not None and keys is not None:
        batch = vision_cache.model_inputs(model, batch, keys, pixel_rows)
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    logits = model(**batch, logits_to_keep=keep).logits
    return target_loss(logits, targets[:, keep], examples[:, keep], reduction)


def _shifted(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HF-convention labels -> (targets aligned with the predicting positions, row index of each)."""
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX), rows

