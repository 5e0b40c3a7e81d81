"""Collators that only batch: labels were set when the examples were encoded (`hacalib.training.examples`).

`pad_collate` pads one example per row and stacks the videos; `packed_collate` batches packed sequences (one video
per row, its examples as segments) with their block attention mask and already aligned targets. No device moves.

May import: torch, `hacalib.models` (packing, IGNORE_INDEX).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from ..models import IGNORE_INDEX
from ..models.packing import attention_mask_for, collate_packed

_TOKEN_KEYS = ("input_ids", "labels", "attention_mask")
_KNOWN_KEYS = frozenset(_TOKEN_KEYS) | {"pixel_values_videos"}


def pad_collate(
    features: Sequence[Mapping[str, Any]], pad_id: int, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad `input_ids` (pad_id), `labels` (-100) and `attention_mask` (0) to the longest; stack the videos.

    Args:
        features: dicts from `hacalib.training.examples.encode`, each optionally with `pixel_values_videos`
            of shape (T, 3, H, W); all features or none must carry it.
        pad_id: the tokenizer's pad token id.
        padding_side: "right" (training) or "left" (generation).
    No device moves, no label edits: tensors stay on the CPU for the loop (or accelerate) to place.
    """
    if not features:
        raise ValueError("pad_collate got no features")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    for i, f in enumerate(features):
        extra = set(f) - _KNOWN_KEYS
        if extra:
            raise ValueError(f"feature {i} has keys the collator does not pad: {sorted(extra)}")
        lengths = {k: len(f[k]) for k in _TOKEN_KEYS}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"feature {i} has token lists of different lengths: {lengths}")
    width = max(len(f["input_ids"]) for f in features)
    out = {}
    for key, fill in (("input_ids", pad_id), ("labels", IGNORE_INDEX), ("attention_mask", 0)):
        rows = []
        for f in features:
            row = torch.as_tensor(f[key], dtype=torch.long)
            pad = torch.full((width - len(row),), fill, dtype=torch.long)
            rows.append(torch.cat([row, pad] if padding_side == "right" else [pad, row]))
        out[key] = torch.stack(rows)
    has_video = ["pixel_values_videos" in f for f in features]
    if any(has_video):
        if not all(has_video):
            raise ValueError("some features carry pixel_values_videos and some do not")
        out["pixel_values_videos"] = torch.stack([torch.as_tensor(f["pixel_values_videos"]) for f in features])
    return out


def packed_collate(items: list[dict[str, Any]], pad_id: int, attn_implementation: str = "sdpa",
                   dtype: torch.dtype = torch.float32, video_keys: bool = False) -> dict[str, Any]:
    """Batch packed items as keyword arguments of a model's forward, plus their targets.

    Returns input_ids and position_ids (B, L), the 4-D block `attention_mask` for `attn_implementation`
    (transformers passes a 4-D mask through unchanged), pixel_values_videos (B, T, 3, H, W), and
    `target_labels` (B, L): at each position the token its logits must predict, -100 elsewhere (packed
    segments are not shifted copies of each other, so the targets come already aligned), and
    `target_segments` (B, L): the batch-wide example number of each target (for per-example loss means);
    with `video_keys`, also `video_keys`: each row's video path (a list of str, the key of
    `hacalib.training.feature_cache.VisionFeatureCache`; the training loop pops it before the forward). Items
    whose pixels were skipped (`PackedVideoDataset.need_pixels`) need `video_keys`: pixel_values_videos
    then stacks only the rows that have pixels (absent when none has) and `pixel_rows` lists their rows.

    Args:
        items: `PackedVideoDataset` items.
        pad_id: the tokenizer's pad id.
        attn_implementation: the language model's attention implementation ('sdpa' or 'eager').
        dtype: compute dtype (the additive 'eager' mask only).
        video_keys: add the `video_keys` list (for the frozen-vision feature cache).
    """
    batch = collate_packed([it["packed"] for it in items], pad_id)
    targets = torch.full_like(batch.input_ids, IGNORE_INDEX)
    targets[batch.target_rows, batch.target_cols] = batch.target_ids
    segments = torch.full_like(batch.input_ids, -1)
    segments[batch.target_rows, batch.target_cols] = batch.target_segment
    out: dict[str, Any] = {
        "input_ids": batch.input_ids,
        "position_ids": batch.position_ids,
        "attention_mask": attention_mask_for(batch.segment_ids, attn_implementation, dtype),
        "target_labels": targets,
        "target_segments": segments,
    }
    rows = [i for i, it in enumerate(items) if it["pixel_values_videos"] is not None]
    if rows:
        out["pixel_values_videos"] = torch.stack([items[i]["pixel_values_videos"] for i in rows])
    if len(rows) < len(items):
        if not video_keys:
            raise ValueError("items without pixels (cached features) need video_keys=True")
        out["pixel_rows"] = rows
    if video_keys:
        out["video_keys"] = [it["video"] for it in items]
    return out
