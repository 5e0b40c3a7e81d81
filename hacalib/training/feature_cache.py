"""Frozen vision features computed once per video and reused (PROTOCOL.md, "Packed scoring" and "Packed training").

Under LoRA the vision side (the family's `vision_modules`: for Video-LLaVA the video tower and the projector) does
not train, so the features of a video are the same at every step and every epoch. `VisionFeatureCache` runs the tower once per video (key: the video's
path), keeps the features of the `max_videos` most recently used videos in memory (Video-LLaVA-7B: 2056 x 4096
bf16, ~16.8 MB a video) and optionally all of them on disk as safetensors (evicted videos are read back from
there, or else recomputed, and later runs reuse them), and hands the
training forward `inputs_embeds` with the features already at the video placeholder positions, so the model's own
forward (with its peft / DDP / autocast wrappers) runs only the language model.

It is only valid while the vision side is frozen and deterministic: `vision_is_frozen` checks that no
parameter of the vision modules requires grad and no dropout is active there; pretraining (which trains the
tower) must run without the cache.

    cache = VisionFeatureCache(identity="toy:<key>|frames=8")
    inputs = cache.model_inputs(model, batch, batch_keys)   # input_ids + pixel_values_videos -> inputs_embeds

May import: torch, safetensors, `hacalib.models` (the family, the packed forward), `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import DataError
from ..io import atomic_path
from ..models import family_of, unwrap
from ..models.packing import video_embeds, video_features


def _vision_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    return family_of(model).vision_modules(model)


def vision_is_frozen(model: torch.nn.Module) -> bool:
    """True when the video features cannot change during training: the family's vision modules have no
    parameter with requires_grad and no active dropout (dropout counts only in training mode)."""
    for module in _vision_modules(model):
        if any(p.requires_grad for p in module.parameters()):
            return False
        for m in module.modules():
            # nn.Dropout modules, and CLIP's functional attention dropout read from its config
            p = getattr(m, "p", None) if isinstance(m, torch.nn.Dropout) else getattr(m, "dropout", None)
            if m.training and isinstance(p, float) and p > 0:
                return False
    return True


class VisionFeatureCache:
    """video key -> projected video features (tokens per video, hidden), the vision tower run once per key.

    Args:
        identity: what else the features depend on besides the vision weights and the video: the
            preprocessing (frames, processor) and precision; part of the on-disk key. The vision weights
            enter the on-disk key through a fingerprint computed from them.
        directory: also store the features there as `<sha256>.safetensors` and read them back in later
            runs (None: memory only).
        storage: device the in-memory features are kept on ('cpu' keeps GPU memory free; they are moved
            to the model's device per batch).
        max_videos: most videos whose features stay in memory, least recently used evicted first (they come
            back from `directory`, or from the tower when there is none); None keeps all, 0 none.

    Attributes:
        tower_videos: videos run through the vision tower by this cache (misses).
        disk_hits: features read from `directory`.
    """

    def __init__(self, identity: str = "", directory: str | Path | None = None, storage: str | torch.device = "cpu",
                 max_videos: int | None = None):
        if max_videos is not None and max_videos < 0:
            raise ValueError(f"max_videos must be >= 0 or None, got {max_videos}")
        self.identity = identity
        self.directory = Path(directory) if directory else None
        self.storage = torch.device(storage)
        self.max_videos = max_videos
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._fingerprint: str | None = None
        self.tower_videos = 0
        self.disk_hits = 0

    def __len__(self) -> int:
        return len(self._memory)

    def has(self, key: str) -> bool:
        """Whether the features of `key` can be had without the tower: in memory, or on disk (the disk is only
        consulted once the vision weights' fingerprint is known, i.e. after the first `features` call)."""
        if key in self._memory:
            return True
        if self.directory is None or self._fingerprint is None:
            return False
        return self._path(self._disk_key(self._fingerprint, key)).is_file()

    def _remember(self, key: str, tensor: torch.Tensor) -> None:
        if self.max_videos == 0:
            return
        self._memory[key] = tensor
        self._memory.move_to_end(key)
        while self.max_videos is not None and len(self._memory) > self.max_videos:
            self._memory.popitem(last=False)

    def features(self, model: torch.nn.Module, keys: Sequence[str], pixel_values_videos: torch.Tensor | None,
                 pixel_rows: Sequence[int] | None = None) -> torch.Tensor:
        """(len(keys), tokens per video, hidden) on the model's device; the tower runs only for unseen keys.

        Args:
            model: the model being trained (its vision side must be frozen: see `vision_is_frozen`).
            keys: one key (video path) per batch row; repeated keys are computed once.
            pixel_values_videos: (rows with pixels, T, 3, H, W) the processed videos (None: no row has them).
            pixel_rows: the batch row of each `pixel_values_videos` row (None: every row, in order); rows
                without pixels must have their features cached (`has`).
        """
        n_pixels = 0 if pixel_values_videos is None else pixel_values_videos.shape[0]
        rows = list(range(len(keys))) if pixel_rows is None else list(pixel_rows)
        if len(rows) != n_pixels or any(not 0 <= r < len(keys) for r in rows):
            raise ValueError(f"{len(keys)} video keys for {n_pixels} videos (pixel rows {rows})")
        pixel_of = {r: i for i, r in enumerate(rows)}
        # this batch's features, held here so that evicting to make room never drops one the batch still needs
        got: dict[str, torch.Tensor] = {}
        missing: dict[str, int] = {}
        for row, key in enumerate(keys):
            if key in got or key in missing:
                continue
            if key in self._memory:
                self._memory.move_to_end(key)
                got[key] = self._memory[key]
            elif (loaded := self._load(model, key)) is not None:
                got[key] = loaded
            elif row in pixel_of:
                missing[key] = pixel_of[row]
            else:
                raise ValueError(f"video {key}: features neither cached nor computable (its pixels were not loaded)")
        if missing:
            with torch.no_grad():
                feats = video_features(unwrap(model), pixel_values_videos[list(missing.values())])
            self.tower_videos += len(missing)
            for key, f in zip(missing, feats):
                got[key] = f.to(self.storage)
                self._save(model, key, got[key])
        for key, f in got.items():
            self._remember(key, f)
        device = next(unwrap(model).parameters()).device
        return torch.stack([got[k] for k in keys]).to(device, non_blocking=True)

    def model_inputs(self, model: torch.nn.Module, batch: dict[str, Any], keys: Sequence[str],
                     pixel_rows: Sequence[int] | None = None) -> dict[str, Any]:
        """`batch` with `input_ids` and `pixel_values_videos` replaced by `inputs_embeds` (features in place).

        Args:
            model: the model being trained.
            batch: the forward's keyword arguments (on the model's device), e.g. from `packed_collate`.
            keys: the video key of each row.
            pixel_rows: the rows `pixel_values_videos` holds (`packed_collate`'s `pixel_rows`; None: all).
        """
        out = dict(batch)
        pixels, input_ids = out.pop("pixel_values_videos", None), out.pop("input_ids")
        out["inputs_embeds"] = video_embeds(model, input_ids, self.features(model, keys, pixels, pixel_rows))
        return out

    # -------------------------------------------------------------------------------- on disk

    def fingerprint(self, model: torch.nn.Module) -> str:
        """sha256 over the names, shapes and float64 sums of the vision modules' weights."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for module in _vision_modules(model):
                named = list(module.named_parameters())
                sums = torch.stack([torch.stack([p.double().sum(), p.double().abs().sum()]) for _, p in named]).tolist()
                for (name, p), s in zip(named, sums):
                    h.update(f"{name}:{tuple(p.shape)}:{s[0]!r}:{s[1]!r};".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def _disk_key(self, fingerprint: str, key: str) -> dict:
        stat = os.stat(key) if os.path.isfile(key) else None  # a re-encoded video gets new features
        return {"identity": self.identity, "vision": fingerprint, "video": key,
                "size": stat.st_size if stat else None, "mtime_ns": stat.st_mtime_ns if stat else None}

    def _path(self, disk_key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(disk_key, sort_keys=True).encode()).hexdigest()
        return self.directory / f"{digest}.safetensors"

    def _load(self, model: torch.nn.Module, key: str) -> torch.Tensor | None:
        """The features of `key` read from `directory`, or None when not there."""
        if self.directory is None:
            return None
        disk_key = self._disk_key(self.fingerprint(model), key)
        path = self._path(disk_key)
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                stored = json.loads((f.metadata() or {}).get("key", "null"))
                tensor = f.get_tensor("features")
        except Exception as exc:  # truncated or foreign file
            raise DataError(path, f"unreadable cached video features ({exc})", key=key) from exc
        if stored != disk_key:
            raise DataError(path, "cached video features were written for another video or model", key=key)
        self.disk_hits += 1
        return tensor.to(self.storage)

    def _save(self, model: torch.nn.Module, key: str, tensor: torch.Tensor) -> None:
        if self.directory is None:
            return
        from safetensors.torch import save_file

        disk_key = self._disk_key(self.fingerprint(model), key)
        with atomic_path(self._path(disk_key)) as tmp:
            save_file({"features": tensor.detach().cpu().contiguous()}, str(tmp), metadata={"key": json.dumps(disk_key, sort_keys=True)})
