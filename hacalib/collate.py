"""A collator that only pads (labels were set when the examples were encoded) and stacks the videos."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

IGNORE_INDEX = -100
_TOKEN_KEYS = ("input_ids", "labels", "attention_mask")
_KNOWN_KEYS = frozenset(_TOKEN_KEYS) | {"pixel_values_videos"}


def pad_collate(
    features: Sequence[Mapping[str, Any]], pad_id: int, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad `input_ids` (pad_id), `labels` (-100) and `attention_mask` (0) to the longest; stack the videos.

    Args:
        features: dicts from `hacalib.examples.encode`, each optionally with `pixel_values_videos`
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
