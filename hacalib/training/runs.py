"""A finished training run on disk: its folder is written whole, with a marker file that holds its cache key.

`finetune` and `pretrain` share this: checkpoints of an unfinished run live in `<out>.run/` (resumed by the loop);
when training ends, the main process writes the run's files, the metrics log and, last, the marker into `<out>`
atomically, then removes `<out>.run/`. A folder whose marker holds the same cache key is a finished run and is
returned without training again.

May import: accelerate, `hacalib.io`, `.loop`, `.metrics_log`.
"""

from __future__ import annotations

import functools
import shutil
import warnings
from pathlib import Path
from typing import Callable

from ..io import atomic_dir, read_json, sha256_file, write_json
from .loop import TrainResult
from .metrics_log import read_metrics


def run_dir_for(out: str | Path) -> Path:
    """Where an unfinished run's checkpoints live: `<out>.run/` beside the finished folder."""
    out = Path(out)
    return out.with_name(out.name + ".run")


def is_finished(out: str | Path, marker: str, key: str) -> bool:
    """Whether `out` holds a finished run whose marker records cache key `key` and whose files still match the
    sha256 the marker records for them (a run written before such records is taken as it is). A file cut short or
    altered makes the run unfinished, with a warning naming it, so the caller trains it again."""
    path = Path(out) / marker
    if not path.is_file():
        return False
    record = read_json(path)
    if record.get("cache_key") != key:
        return False
    for name, digest in (record.get("files") or {}).items():
        file = Path(out) / name
        if not file.is_file() or _sha256(file) != digest:
            warnings.warn(f"{file}: missing or differs from its record in {path}: the run is built again",
                          stacklevel=2)
            return False
    return True


def _sha256(path: Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in this process: a run is checked at every use."""
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def finish_run(out: str | Path, result: TrainResult, marker: str, summary: Callable[[list[dict]], dict],
               write_files: Callable[[Path], None]) -> Path:
    """Move a run that `train` has finished into `out` (every process calls this; the main one writes).

    Args:
        out: the finished run's folder.
        result: what `train` returned (its output_dir is the `.run` folder, removed here).
        marker: the marker file's name; written last, so its presence means "finished".
        summary: the training history (metrics records) -> the marker's JSON record (with its `cache_key`).
        write_files: writes the trained weights (and whatever else the run keeps) into the temporary folder.
    """
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        record = summary(read_metrics(result.metrics_path))
        with atomic_dir(out) as tmp:
            write_files(tmp)
            shutil.copy(result.metrics_path, tmp / "metrics.jsonl")
            # the marker records what it vouches for: `is_finished` checks these before the run is used
            record["files"] = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*"))
                               if p.is_file()}
            write_json(tmp / marker, record)
        shutil.rmtree(result.output_dir)
    state.wait_for_everyone()
    return Path(out)
