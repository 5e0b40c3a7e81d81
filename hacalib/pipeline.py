"""Cached pipeline stages shared by the notebooks: the data root, the base model, fine-tuned adapters.

Each `ensure_*` returns a path and does the work only when the cache under `cache_dir` does not already hold a
finished result for the same configuration, so `haca reproduce` trains each run once however many notebooks use
it. A preset is configuration, not a fork: the toy preset builds its world and base model; the paper preset reads
`data_root` and the hub model.
"""

from __future__ import annotations

from pathlib import Path

from .data.layout import DataRoot


def world_size(smoke: bool) -> str:
    return "smoke" if smoke else "default"


def ensure_world(cache_dir: str | Path, *, smoke: bool, seed: int = 0) -> Path:
    """Build (or reuse) the toy world under `cache_dir/toyworld/<size>-seed<seed>` and return its data root."""
    from .toyworld import build_world

    out = Path(cache_dir) / "toyworld" / f"{world_size(smoke)}-seed{seed}"
    build_world(out, size=world_size(smoke), seed=seed)  # a complete world with the same config is not rebuilt
    return out


def data_root_for(preset: str, data_root: str | Path, cache_dir: str | Path, *, smoke: bool,
                  world_seed: int = 0) -> DataRoot:
    """The data root a notebook reads: the user's real data for the paper preset, the toy world otherwise."""
    if preset == "toy":
        return DataRoot(ensure_world(cache_dir, smoke=smoke, seed=world_seed))
    if not data_root:
        raise ValueError(f"preset {preset!r} needs data_root: a folder laid out as in the README")
    root = DataRoot(data_root)
    if not root.path.is_dir():
        raise FileNotFoundError(f"data_root {root.path} does not exist")
    return root
