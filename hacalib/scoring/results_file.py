"""Resumable P(yes) scoring to a CSV file: results written per completed video (append + fsync), finished videos
skipped on restart, so a killed evaluation continues where it stopped and ends with the same file.

May import: numpy, torch, `hacalib.errors`, `hacalib.io`, `.requests`, `.pyes`.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_path
from .pyes import iter_pyes
from .requests import ScoreRequest, group_by_video

RESULT_COLUMNS = ("request", "video_id", "caption", "score")


def _read_done(path: Path, requests: Sequence[ScoreRequest]) -> dict[int, float]:
    """Rows of completed videos in an earlier, possibly interrupted, results file; checked against requests."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a line torn by the interruption
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    if tuple(rows[0]) != RESULT_COLUMNS:
        problem = f"header {rows[0]} is not {list(RESULT_COLUMNS)}; not a results file of score_to_file"
        raise DataError(path, problem, row=0)
    done: dict[int, float] = {}
    for r, row in enumerate(rows[1:], start=1):
        if len(row) != len(RESULT_COLUMNS):
            raise DataError(path, f"expected {len(RESULT_COLUMNS)} fields, found {len(row)}", row=r)
        try:
            i, score = int(row[0]), float(row[3])
        except ValueError as exc:
            raise DataError(path, f"bad request index or score: {exc}", row=r) from exc
        if not 0 <= i < len(requests) or str(requests[i].key()) != row[1] or requests[i].caption != row[2]:
            problem = "row does not match the requests being scored (different inputs?); use a new file"
            raise DataError(path, problem, row=r, key="request")
        done[i] = score
    return done


def read_scores(path: str | Path, requests: Sequence[ScoreRequest]) -> dict[int, float]:
    """The scores a results file of `score_to_file` holds for `requests` (request index -> score; a torn last line
    dropped), every row checked against the requests (a mismatch is a DataError naming the file and row)."""
    return _read_done(Path(path), requests)


def write_scores(path: str | Path, requests: Sequence[ScoreRequest], scores: Sequence[float]) -> Path:
    """All scores of `requests` as one results file in `score_to_file`'s layout, written atomically (for scorers
    that do not yield per video, e.g. log-likelihood)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(RESULT_COLUMNS)
            for i, (r, s) in enumerate(zip(requests, scores)):
                w.writerow([i, r.key(), r.caption, f"{s:.9g}"])
    return path


def score_to_file(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    out_csv: str | Path,
    **kwargs: Any,
) -> np.ndarray:
    """P(yes) of every request, also written to `out_csv`, resumable per video.

    Each video's rows (`request,video_id,caption,score`) are appended and fsync'ed as soon as the video is
    done. Started again on the same file, it keeps the complete videos (rows checked against `requests`),
    drops a partly written one, and scores only the rest. Every request needs a stable key (a path or a
    `video_id`). Keyword arguments go to `hacalib.scoring.pyes.p_yes`. Returns all scores in request order (float32).
    """
    path = Path(out_csv)
    for i, r in enumerate(requests):
        if not isinstance(r.key(), str):
            raise ValueError(f"request {i} has frames and no video_id: score_to_file needs a stable key to resume")
    done = _read_done(path, requests) if path.is_file() else {}
    complete = {k for k, g in ((requests[g[0]].key(), g) for g in group_by_video(requests)) if all(i in done for i in g)}
    done = {i: s for i, s in done.items() if requests[i].key() in complete}
    # rewrite what is kept (drops a torn line or a partial video), atomically, then append
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(RESULT_COLUMNS)
            for i in done:  # in the order of the file, so a resumed file equals an uninterrupted one
                w.writerow([i, requests[i].key(), requests[i].caption, f"{done[i]:.9g}"])
    out = np.full(len(requests), np.nan, dtype=np.float32)
    for i, s in done.items():
        out[i] = s
    with path.open("a", encoding="utf-8", newline="") as f:
        for key, idx, scores in iter_pyes(model, processor, requests, skip=complete, **kwargs):
            buf = io.StringIO()
            w = csv.writer(buf)
            for i, s in zip(idx, scores):
                w.writerow([i, key, requests[i].caption, f"{s:.9g}"])
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
            out[idx] = scores
    return out
