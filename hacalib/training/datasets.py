"""Training data as torch objects: examples + decoded videos -> model inputs, and the seeded batch order.

`VideoTextDataset` turns encoded examples (token ids and labels, built by `hacalib.training.examples`) and the
videos they point at into the dict a model's forward takes. Decoding and preprocessing a video is
the expensive part and depends only on the video, so processed tensors are cached in memory per video
path, least recently used first out once `max_cached_videos` are held (Video-LLaVA's 8 frames are ~4.8 MB
a video: an unbounded cache of VideoCon's >11k training videos would not fit in host memory).

`SeededBatchSampler` fixes the data order from a seed as a pure function of the micro-batch number, so a
resumed run continues exactly where the interrupted one stopped and several processes read disjoint
slices of the same global batch.

May import: torch, numpy, `hacalib.models` (packing), `hacalib.errors`, `.collate`.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import DataError
from ..models import IGNORE_INDEX
from ..models.packing import pack
from .collate import packed_collate, pad_collate


class SeededBatchSampler(Sampler[list[int]]):
    """Endless micro-batches of dataset indices; the order is a function of (seed, micro-batch number).

    The stream is the concatenation of one permutation of range(n) per epoch (epoch e uses the generator
    seeded with (seed, e)). Global micro-batch k holds stream items [k*B*W, (k+1)*B*W), and process r
    takes the r-th slice of B of them. Nothing is stored, so resuming only needs the micro-batch number.

    Args:
        n: dataset size.
        batch_size: examples per micro-batch per process (B).
        seed: data-order seed.
        rank: this process's index (r).
        world_size: number of processes (W).
        start: first global micro-batch number to yield (the resume position).
    """

    def __init__(self, n: int, batch_size: int, seed: int, *, rank: int = 0, world_size: int = 1, start: int = 0):
        if n <= 0:
            raise ValueError("the training dataset is empty")
        if batch_size <= 0 or not 0 <= rank < world_size or start < 0:
            raise ValueError(f"bad sampler arguments: batch_size={batch_size}, rank={rank}, world_size={world_size}, start={start}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.start = rank, world_size, start
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def _item(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(self._perm[offset])

    def batch(self, k: int) -> list[int]:
        """Indices of global micro-batch `k` for this process."""
        first = (k * self.world_size + self.rank) * self.batch_size
        return [self._item(p) for p in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            yield self.batch(k)
            k += 1


class VideoTextDataset(Dataset):
    """Encoded examples paired with their processed video.

    Each item is the example's own tensors (`input_ids`, `labels`, `attention_mask`, 1-D) plus
    `pixel_values_videos` (num_frames, 3, H, W) from `video_fn(path)`; `pad_collate` stacks them.

    Args:
        encoded: one dict per example with `input_ids`, `labels`, `attention_mask` (lists or 1-D tensors).
        videos: the video path of each example (same length as `encoded`); relative paths are
            resolved against `video_root`.
        video_fn: path -> processed video tensor (num_frames, 3, H, W), e.g. `read_video` followed by
            the processor's video processor (see `hacalib.models.processed_video_fn`).
        video_root: folder the relative video paths are relative to.
        source: file the examples came from, named in error messages.
        max_cached_videos: most processed videos kept in memory (least recently used evicted and decoded
            again when next needed); None keeps every video, 0 keeps none.
    """

    def __init__(
        self,
        encoded: Sequence[dict[str, Any]],
        videos: Sequence[str],
        video_fn: Callable[[Path], torch.Tensor],
        *,
        video_root: str | Path | None = None,
        source: str | Path = "<examples>",
        max_cached_videos: int | None = None,
    ):
        if max_cached_videos is not None and max_cached_videos < 0:
            raise ValueError(f"max_cached_videos must be >= 0 or None, got {max_cached_videos}")
        if len(encoded) != len(videos):
            raise ValueError(f"{len(encoded)} encoded examples but {len(videos)} video paths")
        for row, feats in enumerate(encoded):
            missing = {"input_ids", "labels", "attention_mask"} - set(feats)
            if missing:
                raise DataError(source, f"encoded example lacks {sorted(missing)}", row=row)
            if len(feats["input_ids"]) != len(feats["labels"]):
                raise DataError(source, "input_ids and labels differ in length", row=row)
        root = Path(video_root) if video_root is not None else None
        # Tensors once, not per access: the loop reads every example many times.
        keys = ("input_ids", "labels", "attention_mask")
        self.encoded = [{k: torch.as_tensor(f[k], dtype=torch.long) for k in keys} for f in encoded]
        self.videos = [root / v if root is not None and not Path(v).is_absolute() else Path(v) for v in videos]
        self.video_fn = video_fn
        self.max_cached_videos = max_cached_videos
        self._cache: OrderedDict[Path, torch.Tensor] = OrderedDict()
        self.decoded = 0  # video_fn calls (cache misses)

    def __len__(self) -> int:
        return len(self.encoded)

    def video(self, path: Path) -> torch.Tensor:
        """The processed video for `path`, served from memory when cached, else decoded (and cached)."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        tensor = self.video_fn(path)
        self.decoded += 1
        if self.max_cached_videos != 0:
            self._cache[path] = tensor
            if self.max_cached_videos is not None and len(self._cache) > self.max_cached_videos:
                self._cache.popitem(last=False)
        return tensor

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**self.encoded[i], "pixel_values_videos": self.video(self.videos[i])}


class PackedVideoDataset(Dataset):
    """One item per video (or per chunk of a video's examples): the examples packed behind their shared prefix.

    PROTOCOL.md, "Packed training": a video's examples all start with the same prompt tokens, including the hundreds to
    thousands of video tokens. Packed (`hacalib.models.packing.pack`), the prefix and the vision tower run once
    per video and every example becomes a segment that sees the prefix and itself; the loss is the same as
    on the separate sequences (tested), at a fraction of the tokens.

    Args:
        encoded, videos, video_fn, video_root, source, max_cached_videos: as for `VideoTextDataset`.
        max_segments: most examples in one packed sequence; a video with more is split into several items.
        need_pixels: video key (str of its path) -> whether the item needs the processed video; False skips
            decoding and the item's `pixel_values_videos` is None (e.g. `VisionFeatureCache.has` negated:
            cached features make the pixels useless). Asked when the item is fetched. None: always.
    """

    def __init__(
        self,
        encoded: Sequence[dict[str, Any]],
        videos: Sequence[str],
        video_fn: Callable[[Path], torch.Tensor],
        *,
        video_root: str | Path | None = None,
        source: str | Path = "<examples>",
        max_segments: int = 16,
        max_cached_videos: int | None = None,
        need_pixels: Callable[[str], bool] | None = None,
    ):
        flat = VideoTextDataset(encoded, videos, video_fn, video_root=video_root, source=source,
                                max_cached_videos=max_cached_videos)
        self.need_pixels = need_pixels
        self._videos = flat  # shares its video cache
        by_video: dict[Path, list[int]] = {}
        for i, v in enumerate(flat.videos):
            by_video.setdefault(v, []).append(i)
        self.items: list[tuple[Path, Any]] = []
        for video, rows in by_video.items():
            for start in range(0, len(rows), max_segments):
                chunk = [flat.encoded[i] for i in rows[start : start + max_segments]]
                n = _prefix_len(chunk)
                if n < 1:
                    raise DataError(source, "examples of one video share no prompt prefix", row=rows[start])
                packed = pack(chunk[0]["input_ids"][:n].tolist(), [f["input_ids"][n:].tolist() for f in chunk],
                              [f["labels"][n:].tolist() for f in chunk])
                self.items.append((video, packed))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        video, packed = self.items[i]
        key = str(video)
        pixels = self._videos.video(video) if self.need_pixels is None or self.need_pixels(key) else None
        return {"packed": packed, "pixel_values_videos": pixels, "video": key}


def _prefix_len(chunk: list[dict[str, torch.Tensor]]) -> int:
    """Common prefix of the examples' tokens, ending before the first target token of any of them."""
    first = chunk[0]["input_ids"]
    n = min(len(f["input_ids"]) for f in chunk)
    for f in chunk:
        targets = (f["labels"] != IGNORE_INDEX).nonzero()
        n = min(n, int(targets[0]) if len(targets) else n)
        same = (f["input_ids"][:n] == first[:n]).long()
        n = int(same.cumprod(0).sum())
    return n


def training_data(
    encoded: Sequence[dict[str, Any]],
    videos: Sequence[str],
    video_fn: Callable[[Path], torch.Tensor],
    *,
    packed: bool,
    pad_id: int,
    attn_implementation: str = "sdpa",
    video_root: str | Path | None = None,
    source: str | Path = "<examples>",
    max_segments: int = 16,
    max_cached_videos: int | None = None,
    need_pixels: Callable[[str], bool] | None = None,
    video_keys: bool = False,
) -> tuple[Dataset, Callable[[list], dict[str, Any]]]:
    """The dataset and collate function of a training run, packed or one padded row per example.

    Packed: `PackedVideoDataset` + `packed_collate` (the loss is the same as unpacked, at a fraction of the
    tokens); otherwise `VideoTextDataset` + `pad_collate`. `max_segments`, `need_pixels` and `video_keys`
    only apply when packed; the other arguments are those of the two datasets and collators.
    """
    if packed:
        dataset = PackedVideoDataset(encoded, videos, video_fn, video_root=video_root, source=source,
                                     max_segments=max_segments, max_cached_videos=max_cached_videos,
                                     need_pixels=need_pixels)
        return dataset, partial(packed_collate, pad_id=pad_id, attn_implementation=attn_implementation,
                                video_keys=video_keys)
    dataset = VideoTextDataset(encoded, videos, video_fn, video_root=video_root, source=source,
                               max_cached_videos=max_cached_videos)
    return dataset, partial(pad_collate, pad_id=pad_id)
