"""SSv2 text-to-video retrieval (VideoCon's SSv2-Temporal / SSv2-Events) -> a query x video match matrix.

The matrix CSV (`eval_ssv2_<name>.csv`) has `videopath,caption,match`, one row per (query, video)
pair; `caption` wraps the SSv2 template ("Covering [something] with [something]") in VideoCon's
mPLUG-Owl entailment prompt, so `extract_template` takes the template out and our own prompt can be
applied. A scores file (VideoCon's `entailment_inference.py` output) is header-less:
`videopath,caption,entailment,pos,neg`; only `entailment` (P(yes)) is used.

Videos are ordered by sorted `videopath`, as VideoCon's `calc_ssv2.py` orders them before its
`np.argsort(-score)`: with tied scores the order decides the ranking. Queries keep their order of
first appearance. Row numbers in errors are 0-based data rows (header not counted).

May import: numpy, its own package's modules, `hacalib.errors`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._common import check_file, describe_groups, find_duplicates, read_csv, require_text

COLUMNS = ("videopath", "caption", "match")
SCORE_COLUMNS = ("videopath", "caption", "entailment", "pos", "neg")

# The quoted description inside an entailment question (VideoCon's mPLUG-Owl prompt and our
# Video-LLaVA prompt both ask `... entail the description: "<text>"?`). Greedy up to the last `"?`
# so that quotes inside the template survive.
_WRAPPED = re.compile(r'entail the description: "(?P<text>.*)"\?', re.DOTALL)


def extract_template(caption: str) -> str:
    """The SSv2 template inside a prompt-wrapped caption; a caption without the wrapper is returned unchanged."""
    m = _WRAPPED.search(caption)
    return m.group("text") if m else caption


@dataclass(frozen=True)
class RetrievalRow:
    videopath: str
    caption: str
    query: str
    match: bool
    row: int


@dataclass(frozen=True, eq=False)
class RetrievalMatrix:
    """Queries x videos. `match[q, v]` is True when video v shows query q."""

    path: str
    videos: tuple[str, ...]
    queries: tuple[str, ...]
    match: np.ndarray
    rows: tuple[RetrievalRow, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.match.shape

    def video_index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.videos)}

    def query_index(self) -> dict[str, int]:
        return {q: i for i, q in enumerate(self.queries)}


_MATCH_VALUES = {"1": True, "0": False, "true": True, "false": False}


def load_retrieval_matrix(csv_path: str | Path) -> RetrievalMatrix:
    """Load a retrieval CSV; every (query, video) pair must appear exactly once.

    Raises:
        DataError naming the file and row: missing columns, empty caption/videopath, a `match` that is
        not 0/1, a repeated (query, video) pair, missing pairs (count and examples), a query without
        any positive video.
    """
    path = Path(csv_path)
    rows: list[RetrievalRow] = []
    for i, rec in enumerate(read_csv(path, COLUMNS)):
        videopath = require_text(path, rec, "videopath", row=i)
        caption = require_text(path, rec, "caption", row=i)
        query = extract_template(caption)
        if not query.strip():
            raise DataError(path, "empty query text inside the prompt", row=i, key="caption")
        match = _MATCH_VALUES.get(rec["match"].strip().lower())
        if match is None:
            raise DataError(path, f"match must be 0 or 1, found {rec['match']!r}", row=i, key="match")
        rows.append(RetrievalRow(videopath, caption, query, match, i))
    if not rows:
        raise DataError(path, "no data rows")
    groups = find_duplicates((r.query, r.videopath) for r in rows)
    if groups:
        raise DataError(path, f"repeated (query, video) pairs at rows {describe_groups(groups)}", row=groups[0][1])
    _check_one_caption_per_query(path, rows)

    videos = tuple(sorted({r.videopath for r in rows}))
    queries = tuple(dict.fromkeys(r.query for r in rows))
    vi = {v: i for i, v in enumerate(videos)}
    qi = {q: i for i, q in enumerate(queries)}
    match = np.zeros((len(queries), len(videos)), dtype=bool)
    present = np.zeros_like(match)
    for r in rows:
        match[qi[r.query], vi[r.videopath]] = r.match
        present[qi[r.query], vi[r.videopath]] = True
    if not present.all():
        raise DataError(path, _missing_pairs_message(present, queries, videos) + " (the matrix must be complete)")
    no_positive = [queries[q] for q in np.flatnonzero(~match.any(axis=1))]
    if no_positive:
        raise DataError(path, f"{len(no_positive)} quer(ies) without any matching video, e.g. {no_positive[0]!r}")
    return RetrievalMatrix(str(path), videos, queries, match, tuple(rows))


def _check_one_caption_per_query(path: Path, rows: list[RetrievalRow]) -> None:
    """Two different prompt texts must not collapse onto one template (they would merge two queries)."""
    first: dict[str, RetrievalRow] = {}
    for r in rows:
        seen = first.setdefault(r.query, r)
        if seen.caption != r.caption:
            raise DataError(path, f"rows {seen.row} and {r.row} wrap the same template {r.query!r} in different prompts", row=r.row, key="caption")


def _missing_pairs_message(present: np.ndarray, queries: tuple[str, ...], videos: tuple[str, ...], limit: int = 3) -> str:
    missing = np.argwhere(~present)
    examples = ", ".join(f"({queries[q]!r}, {videos[v]!r})" for q, v in missing[:limit])
    return f"{len(missing)} of {present.size} (query, video) pairs missing, e.g. {examples}"


def load_retrieval_scores(scores_csv: str | Path, matrix: RetrievalMatrix) -> np.ndarray:
    """Read a scores file into a float64 (queries x videos) array aligned with `matrix`.

    Pairs are matched on (videopath, template), so a scores file may use the wrapped caption or the
    bare template. The file is header-less; a first row starting `videopath,caption` is read as a header.

    Raises:
        DataError naming the file: a non-numeric or non-finite score (with row), a pair that is not in
        the matrix (with row), repeated pairs (with rows), missing pairs (count and examples).
    """
    path = Path(scores_csv)
    if _has_header(path):
        records = read_csv(path, SCORE_COLUMNS[:3])
    else:
        records = read_csv(path, SCORE_COLUMNS, header=False)
    vi, qi = matrix.video_index(), matrix.query_index()
    scores = np.full(matrix.shape, np.nan, dtype=np.float64)
    keys = []
    for row, rec in enumerate(records):
        videopath = require_text(path, rec, "videopath", row=row)
        query = extract_template(require_text(path, rec, "caption", row=row))
        try:
            value = float(rec["entailment"])
        except ValueError:
            raise DataError(path, f"entailment score is not a number: {rec['entailment']!r}", row=row, key="entailment") from None
        if not math.isfinite(value):
            raise DataError(path, f"entailment score is not finite: {rec['entailment']!r}", row=row, key="entailment")
        if query not in qi or videopath not in vi:
            what = "query" if query not in qi else "video"
            raise DataError(path, f"({query!r}, {videopath!r}) is not in the retrieval matrix {matrix.path} (unknown {what})", row=row)
        keys.append((query, videopath))
        scores[qi[query], vi[videopath]] = value
    groups = find_duplicates(keys)
    if groups:
        raise DataError(path, f"repeated (query, video) pairs at rows {describe_groups(groups)}", row=groups[0][1])
    present = ~np.isnan(scores)
    if not present.all():
        raise DataError(path, _missing_pairs_message(present, matrix.queries, matrix.videos))
    return scores


def _has_header(path: Path) -> bool:
    check_file(path)
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().startswith("videopath,caption")
