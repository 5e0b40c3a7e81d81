"""VideoCon entailment CSV (`videocon_llm_entailment.csv`) -> rows, HACA triplets and labelled pairs.

Columns: videopath,source,caption,neg_caption,youtube_key,split,misalignment. `caption` is the true
caption, `neg_caption` the LLM-written contrast caption, `misalignment` the kind of change. The
released file names videos by their path in the source dataset (e.g. `msr-vtt/TrainValVideo/
video5920.mp4`), relative to `<data_root>/videocon/videos/`.

Row numbers in errors are 0-based data rows (header not counted).

May import: its own package's modules, `hacalib.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ._common import DUPLICATE_POLICIES, describe_groups, find_duplicates, read_csv, require_text, resolve_video

COLUMNS = ("videopath", "source", "caption", "neg_caption", "youtube_key", "split", "misalignment")

# The seven misalignments of the VideoCon paper, spelled as in the released CSV (lower case; the
# event-order change is "flip"). Hritikbansal/videocon src/misalignment_prompts.py has one LLM prompt
# per type (OBJECT, ACTION, ATTRIBUTE, RELATION, HALLUCINATION, COUNTING, EVENT).
MISALIGNMENT_TYPES = ("object", "action", "attribute", "relation", "hallucination", "counting", "flip")


@dataclass(frozen=True)
class VideoConRow:
    """One CSV row. `video_path` is `video_root / videopath` when the loader was given a root, else None."""

    videopath: str
    source: str
    caption: str
    neg_caption: str
    youtube_key: str
    split: str
    misalignment: str
    row: int
    video_path: str | None = None

    @property
    def video(self) -> str:
        """The resolved path when known, else the CSV's videopath (a stable key either way)."""
        return self.video_path if self.video_path is not None else self.videopath


@dataclass(frozen=True)
class Triplet:
    """HACA's training unit: the video, a misaligned description, and its correction (the true caption)."""

    video: str
    description: str
    correction: str
    misalignment: str
    row: int


@dataclass(frozen=True)
class Pair:
    """A (video, caption) pair with its entailment label: True for the caption, False for the contrast caption."""

    video: str
    caption: str
    label: bool
    misalignment: str
    row: int


def load_videocon(
    csv_path: str | Path,
    video_root: str | Path | None = None,
    check_videos: bool = False,
    *,
    duplicates: str = "error",
) -> list[VideoConRow]:
    """Load and validate a VideoCon entailment CSV.

    Args:
        csv_path: the CSV file.
        video_root: folder the `videopath` values are relative to (`<data_root>/videocon/videos`);
            sets each row's `video_path`.
        check_videos: require every video file to exist (needs `video_root`).
        duplicates: what to do with rows repeated exactly: 'error' (default; the message lists the
            rows), 'drop' (keep the first, as VideoCon's own `prepare_data_for_train.py` does with
            `drop_duplicates()`), or 'keep'.

    Raises:
        DataError naming the file and the row/column: missing columns, empty text, a contrast
        caption equal to the caption, an unknown misalignment type, repeated rows, a missing video.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    path = Path(csv_path)
    records = read_csv(path, COLUMNS)
    rows: list[VideoConRow] = []
    for i, rec in enumerate(records):
        videopath = require_text(path, rec, "videopath", row=i)
        caption = require_text(path, rec, "caption", row=i)
        neg_caption = require_text(path, rec, "neg_caption", row=i)
        if caption.strip() == neg_caption.strip():
            raise DataError(path, "neg_caption is identical to caption", row=i, key="neg_caption")
        misalignment = rec["misalignment"]
        if misalignment not in MISALIGNMENT_TYPES:
            raise DataError(path, f"unknown misalignment type {misalignment!r}; known: {', '.join(MISALIGNMENT_TYPES)}", row=i, key="misalignment")
        rows.append(VideoConRow(
            videopath=videopath, source=rec["source"], caption=caption, neg_caption=neg_caption,
            youtube_key=rec["youtube_key"], split=rec["split"], misalignment=misalignment, row=i,
            video_path=resolve_video(path, video_root, videopath, check=check_videos, row=i, key="videopath"),
        ))
    groups = find_duplicates(tuple(rec[c] for c in COLUMNS) for rec in records)
    if groups and duplicates == "error":
        raise DataError(
            path,
            f"{sum(len(g) - 1 for g in groups)} repeated row(s); identical rows: {describe_groups(groups)} "
            "(pass duplicates='drop' or 'keep' to accept them)",
            row=groups[0][1],
        )
    if groups and duplicates == "drop":
        repeats = {i for g in groups for i in g[1:]}
        rows = [r for r in rows if r.row not in repeats]
    return rows


def to_triplets(rows: Iterable[VideoConRow]) -> list[Triplet]:
    """One triplet per row: description = neg_caption (misaligned), correction = caption (true)."""
    return [Triplet(r.video, r.neg_caption, r.caption, r.misalignment, r.row) for r in rows]


def to_pairs(rows: Iterable[VideoConRow], *, dedupe: bool = False) -> list[Pair]:
    """Both pairs of every row, in row order: (video, caption, True) then (video, neg_caption, False).

    Args:
        rows: loaded rows.
        dedupe: drop a pair whose (video, caption, label) already appeared. A caption with several
            contrast captions otherwise yields its aligned pair once per row; VideoCon's
            `prepare_data_for_train.py` drops such repeats after building its prompts.
    """
    pairs: list[Pair] = []
    seen: set[tuple[str, str, bool]] = set()
    for r in rows:
        for caption, label in ((r.caption, True), (r.neg_caption, False)):
            key = (r.video, caption, label)
            if dedupe and key in seen:
                continue
            seen.add(key)
            pairs.append(Pair(r.video, caption, label, r.misalignment, r.row))
    return pairs


# VideoCon's custom-inference input (`examples/test.csv` in Hritikbansal/videocon): one text per row
# to score against a video, before `prepare_data_for_inference.py` wraps it in the entailment prompt.
QUERY_COLUMNS = ("videopath", "text")


@dataclass(frozen=True)
class EntailmentQuery:
    """A (video, text) pair to score, from a `videopath,text` CSV."""

    videopath: str
    text: str
    row: int
    video_path: str | None = None


def load_entailment_queries(
    csv_path: str | Path, video_root: str | Path | None = None, check_videos: bool = False
) -> list[EntailmentQuery]:
    """Load a `videopath,text` CSV (VideoCon's custom-inference format); texts must be non-empty."""
    path = Path(csv_path)
    out = []
    for i, rec in enumerate(read_csv(path, QUERY_COLUMNS)):
        videopath = require_text(path, rec, "videopath", row=i)
        text = require_text(path, rec, "text", row=i)
        out.append(EntailmentQuery(videopath, text, i, resolve_video(path, video_root, videopath, check=check_videos, row=i, key="videopath")))
    return out
