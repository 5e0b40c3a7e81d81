"""What the scorers and generators take: a (video, caption) request, videos loaded once, requests grouped by video.

May import: torch, numpy, `hacalib.models` (the family's processor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, MutableMapping, Sequence

import numpy as np
import torch

from ..models import preprocess_videos, processed_video_fn

METHODS = ("packed", "naive")  # scoring methods: packed prefix reuse (default) or one full forward per pair
# P(yes) also has "cascade": the prefix once, captions attending to its kept keys/values (hacalib.models.cascade)
PYES_METHODS = METHODS + ("cascade",)

@dataclass(frozen=True)
class ScoreRequest:
    """One (video, caption) pair to score.

    video: a video file path, or decoded frames (T, H, W, 3) uint8 as a numpy array.
    caption: the description (P(yes)) or the caption whose likelihood is wanted.
    video_id: grouping key; default the path (frames: the array object itself, so pass the same array
        for captions of the same video, or give a `video_id`; `score_to_file` needs a path or an id).
    """

    video: Any
    caption: str
    video_id: str | None = None

    def key(self) -> Any:
        if self.video_id is not None:
            return self.video_id
        if isinstance(self.video, (str, Path)):
            return str(self.video)
        return ("frames", id(self.video))


class VideoLoader:
    """Request -> processed video tensor (T, 3, H, W), decoded once per video and kept in `cache`.

    Args:
        processor: the model's processor.
        num_frames: frames sampled per video file.
        cache: a dict the caller may keep between calls (video key -> tensor); None: a private one.
    """

    def __init__(self, processor: Any, num_frames: int = 8, cache: MutableMapping | None = None):
        self.processor = processor
        self.cache = {} if cache is None else cache
        self._from_file = processed_video_fn(processor, num_frames)

    def __call__(self, request: ScoreRequest) -> torch.Tensor:
        key = request.key()
        video = self.cache.get(key)
        if video is None:
            if isinstance(request.video, (str, Path)):
                video = self._from_file(Path(request.video))
            else:
                video = preprocess_videos(self.processor, [np.asarray(request.video)])[0]
            self.cache[key] = video  # a shared cache may decline it (`hacalib.models.VideoStore`)
        return video


def group_by_video(requests: Sequence[ScoreRequest]) -> list[list[int]]:
    """Request indices grouped by video, videos in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.key(), []).append(i)
    return list(groups.values())


def model_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) padded on `side`."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[r, sl] = torch.tensor(s, dtype=torch.long)
        att[r, sl] = 1
    return ids, att


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of at most `size` items."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def packed_forwards(groups: Sequence[Sequence[int]], per_unit: int, units_per_forward: int) -> list[list[int]]:
    """Request indices per forward of the packed scorers: each video's requests cut into units of `per_unit`, then
    `units_per_forward` consecutive units a forward (what `iter_pyes` and `caption_loglik` do; `.shards` cuts
    processes' shares at these forwards so each forms the batches a one-process run forms)."""
    units = [list(c) for g in groups for c in chunks(list(g), per_unit)]
    return [[i for unit in step for i in unit] for step in chunks(units, units_per_forward)]


def naive_logits(model, ids, att, pv, device) -> torch.Tensor:
    """Full forward of a padded batch; positions from the mask so left padding changes nothing."""
    position_ids = (att.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=ids.to(device), attention_mask=att.to(device), position_ids=position_ids.to(device),
        pixel_values_videos=pv.to(device, next(model.parameters()).dtype), use_cache=False,
    )
    return out.logits


def check_method(method: str, batch_size: int, segments_per_pack: int, methods: tuple[str, ...] = METHODS) -> None:
    """Refuse a method the scorer does not have (`methods`) and batch sizes below 1."""
    if method not in methods:
        raise ValueError(f"unknown scoring method {method!r}; choose one of {methods}")
    if batch_size < 1 or segments_per_pack < 1:
        raise ValueError(f"batch_size and segments_per_pack must be >= 1, got {batch_size}, {segments_per_pack}")
