"""Per-item results files that know their own content: a file cut short or edited is recomputed, never read.

`write_results` writes the CSV atomically and then a record beside it (`.check.NAME.json`: its rows and sha256);
`cached_results` reads a file back only when it matches its record, and otherwise removes both (they are ours: the
experiment's cache) so the caller scores the benchmark again. A file written before records existed has none: its
first read records it as it is (trust on first read; PROTOCOL.md, "Reliability").

May import: pandas, `hacalib.io`, `.derived`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..io import read_json, sha256_file, write_frame_csv, write_json
from .derived import read_results


def record_path(path: Path) -> Path:
    # `.check.` first: a progress file's glob (`.qa-*`) never matches a record
    return path.with_name(f".check.{path.name}.json")


def write_results(df: pd.DataFrame, path: Path) -> None:
    """`df` as the per-item CSV `path`, then its record (rows, sha256)."""
    write_frame_csv(df, path)
    write_json(record_path(path), {"rows": len(df), "sha256": sha256_file(path)})


def cached_results(benchmark: str, path: Path) -> pd.DataFrame | None:
    """The per-item results at `path` (derived columns recomputed), or None when there is no file or it no longer
    matches its record (then the file and its record are removed, with a warning naming the file)."""
    if not path.is_file():
        return None
    record = record_path(path)
    digest = sha256_file(path)
    if record.is_file():
        expected = read_json(record)
        if not isinstance(expected, dict) or expected.get("sha256") != digest:
            rows = expected.get("rows") if isinstance(expected, dict) else "?"
            warnings.warn(f"{path}: changed after it was written (recorded {rows} rows, sha256 differs): "
                          "scoring it again", stacklevel=2)
            path.unlink()
            record.unlink()
            return None
        return read_results(benchmark, path)
    df = read_results(benchmark, path)
    write_json(record, {"rows": len(df), "sha256": digest, "recorded": "on first read (written before records)"})
    return df
