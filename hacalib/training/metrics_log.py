"""The training metrics log: one JSON line per logged step (`metrics.jsonl`), cut back to the checkpoint on resume.

May import: `hacalib.errors`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError


def metric_lines_upto(path: Path, step: int) -> str:
    """The metrics log's records up to `step` (a resumed run rewrites what came after its checkpoint)."""
    if step == 0 or not path.is_file():
        return ""
    kept = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the interruption
        if not isinstance(record, dict) or "step" not in record:
            raise DataError(path, "metrics record without a step", row=row)
        if record["step"] <= step:
            kept.append(line + "\n")
    return "".join(kept)


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON-lines metrics log written by `train` (one dict per logged step)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "metrics log not found")
    out = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON: {exc.msg}", row=row) from exc
    return out

