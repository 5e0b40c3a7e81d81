"""Loaded models kept for reuse by key, the most recently used last, at most as many as the caller allows.

A 7B model is ~15 GB in bf16: an experiment that asks for ten runs' models cannot keep them all on one GPU.

May import: torch.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Hashable, Iterator


class LoadedModels:
    """(model, processor) pairs by key; `get` loads what is missing and drops the least recently used beyond a limit."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}

    def get(self, key: Hashable, load: Callable[[], Any], *, limit: int | None = None) -> Any:
        """The item under `key`, loaded by `load()` if absent; with a `limit`, at most that many are kept."""
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recently used last
            return self._items[key]
        if limit is not None:
            self.release(keep=limit - 1)  # before loading: the new model needs the memory
        self._items[key] = load()
        return self._items[key]

    def release(self, keep: int = 0) -> None:
        """Drop all but the `keep` most recently used, and give their memory back now."""
        if len(self._items) <= keep:
            return
        while len(self._items) > keep:
            del self._items[next(iter(self._items))]
        import torch

        gc.collect()  # the models' tensors go now, not at the next collection
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._items)
