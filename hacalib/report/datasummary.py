"""Small tables that describe a dataset: misalignment-type mix, caption statistics, example triplets.

May import: pandas, `hacalib.metrics`.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import pandas as pd

from ..metrics.corrections import changed_spans


def misalignment_mix(rows: Sequence) -> pd.DataFrame:
    """Count and share (%) of each misalignment type (rows with a `.misalignment` field), most common first."""
    counts = Counter(r.misalignment for r in rows)
    total = sum(counts.values())
    df = pd.DataFrame(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), columns=["misalignment", "rows"])
    df["share (%)"] = 100 * df["rows"] / max(total, 1)
    return df


def _word_counts(texts: Iterable[str]) -> pd.Series:
    return pd.Series([len(t.split()) for t in texts], dtype=float)


def caption_stats(rows: Sequence) -> pd.DataFrame:
    """Words per caption and per contrast caption, distinct videos and vocabulary size."""
    stats = []
    for field in ("caption", "neg_caption"):
        texts = [getattr(r, field) for r in rows]
        words = _word_counts(texts)
        vocab = {w.lower().strip('.,!?;:"') for t in texts for w in t.split()}
        stats.append({"field": field, "rows": len(texts), "mean_words": words.mean(), "median_words": words.median(),
                      "max_words": words.max(), "vocabulary": len(vocab)})
    df = pd.DataFrame(stats)
    df["distinct_videos"] = len({r.videopath for r in rows})
    return df


def word_diff(a: str, b: str) -> str:
    """What contrast caption `b` changed in true caption `a`: its word spans that differ, in order, joined by " / "
    (a replaced word, an inserted clause, or both halves of a swapped order)."""
    return " / ".join(" ".join(span) for span in changed_spans(b, a))


def triplet_table(triplets: Sequence, n: int = 8, per_type: bool = True) -> pd.DataFrame:
    """Up to `n` HACA triplets (one per misalignment type first), with the words each contrast caption changed."""
    chosen, seen = [], set()
    if per_type:
        for t in triplets:
            if t.misalignment not in seen:
                chosen.append(t)
                seen.add(t.misalignment)
    for t in triplets:
        if len(chosen) >= n:
            break
        if t not in chosen:
            chosen.append(t)
    return pd.DataFrame([{"misalignment": t.misalignment, "description (contrast)": t.description,
                          "correction (true)": t.correction, "changed words": word_diff(t.correction, t.description)}
                         for t in chosen[:n]])
