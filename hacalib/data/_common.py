"""Checks shared by the format loaders: strict CSV and JSON reading, non-empty text, duplicates, video paths.

Row numbers in error messages are 0-based data rows (the header is not counted), as pandas numbers
them; a quoted caption may span several physical lines, so they are not editor line numbers.

May import: `hacalib.errors`.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

from ..errors import DataError

DUPLICATE_POLICIES = ("error", "drop", "keep")


def check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(path, "file not found" if not path.exists() else "not a file")


def read_csv(path: str | Path, required: Sequence[str], *, header: bool = True) -> list[dict[str, str]]:
    """Read a CSV into one dict per data row; every row must have exactly the header's fields.

    Args:
        path: the CSV file.
        required: columns that must be present (with `header=False`: the column names, in order).
        header: False for header-less files, whose columns are then named by `required`.
    """
    path = Path(path)
    check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            # Blank lines carry no data; skipping them numbers rows as pandas does (skip_blank_lines).
            rows = [r for r in reader if r]
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV near line {reader.line_num}: {exc}") from exc
    if header:
        if not rows:
            raise DataError(path, "empty file (no header row)")
        columns, body = rows[0], rows[1:]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise DataError(path, f"repeated column name(s) {repeated}", key=repeated[0])
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; found {columns}", key=missing[0])
    else:
        columns, body = list(required), rows
    out = []
    for i, values in enumerate(body):
        if len(values) != len(columns):
            raise DataError(path, f"expected {len(columns)} fields, found {len(values)}", row=i)
        out.append(dict(zip(columns, values)))
    return out


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def read_json_strict(path: str | Path) -> Any:
    """Parse a JSON file; malformed JSON names the line, a repeated object key (which `json` would
    silently overwrite) is an error naming the key."""
    path = Path(path)
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise DataError(path, "duplicate key in a JSON object (a later value would silently replace it)", key=exc.key) from None


def require_text(path: Path, record: dict, key: str, *, row: int | None = None, where: str | None = None) -> str:
    """The value at `key`, which must be a non-blank string; `where` names the record for JSON files."""
    label = f"{where}/{key}" if where else key
    if key not in record:
        raise DataError(path, "missing key", row=row, key=label)
    value = record[key]
    if not isinstance(value, str):
        raise DataError(path, f"expected a string, found {type(value).__name__}", row=row, key=label)
    if not value.strip():
        raise DataError(path, "empty text", row=row, key=label)
    return value


def find_duplicates(keys: Iterable[Hashable]) -> list[list[int]]:
    """Groups of positions (each with 2+ members) that share a key, in order of first position."""
    positions: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        positions[key].append(i)
    return [group for group in positions.values() if len(group) > 1]


def describe_groups(groups: list[list[int]], limit: int = 5) -> str:
    shown = "; ".join(", ".join(str(i) for i in g) for g in groups[:limit])
    more = f" (and {len(groups) - limit} more groups)" if len(groups) > limit else ""
    return shown + more


def resolve_video(path: Path, video_root: str | Path | None, relpath: str, *, check: bool, row: int | None = None, key: str | None = None) -> str | None:
    """`video_root / relpath` as a string (None without a root); with `check`, the file must exist."""
    if video_root is None:
        if check:
            raise ValueError("check_videos=True needs a video_root")
        return None
    full = Path(video_root) / relpath
    if check and not full.is_file():
        raise DataError(path, f"video not found: {full}", row=row, key=key)
    return str(full)
