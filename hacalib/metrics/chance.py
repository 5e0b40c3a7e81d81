"""Chance levels and base rates: what a table's numbers are compared with before they mean anything.

- VELOCITI: ClassicVLE of a model whose P(yes) ignores the video is 50% (pos and neg equally likely to win);
  StrictVLE of one whose two answers are independent fair coins is 25% (P(pos) > 0.5 and P(neg) < 0.5).
- Retrieval: the expected AP and R@k of a uniformly random ranking, exactly (no simulation):
  E[AP] = (H_N + (R - 1) / (N - 1) * (N - H_N)) / N for R positives among N items (H_N the N-th harmonic number;
  each rank r holds a positive with probability R/N, and then the other R - 1 positives fall among the r - 1
  places above it hypergeometrically), and R@k = 1 - C(N - R, k) / C(N, k).
- QA: the accuracy of always answering a question type's most frequent answer (the type's majority baseline).

May import: numpy, pandas, scipy, `.qa`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy.special import comb

from .qa import normalize_answer

VELOCITI_CHANCE = {"classic_vle": 0.5, "strict_vle": 0.25}


def random_ranking_ap(positives: int, items: int) -> float:
    """Expected average precision of a uniformly random ranking of `items` with `positives` relevant ones."""
    if not 1 <= positives <= items:
        raise ValueError(f"need 1 <= positives <= items, got {positives} of {items}")
    if items == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, items + 1)))
    return (harmonic + (positives - 1) / (items - 1) * (items - harmonic)) / items


def random_hit_at_k(positives: int, items: int, k: int) -> float:
    """Probability that a uniformly random ranking has a relevant item in its top k."""
    if not 1 <= positives <= items:
        raise ValueError(f"need 1 <= positives <= items, got {positives} of {items}")
    k = min(k, items)
    return 1.0 - float(comb(items - positives, k, exact=True)) / float(comb(items, k, exact=True))


def random_ranking(match: np.ndarray) -> dict[str, float]:
    """Chance of every retrieval metric for one (queries x items) relevance matrix: the mean over queries."""
    match = np.asarray(match, dtype=bool)
    n = match.shape[1]
    pos = match.sum(axis=1)
    out = {"map": float(np.mean([random_ranking_ap(int(r), n) for r in pos]))}
    for k in (1, 5, 10):
        out[f"R@{k}"] = float(np.mean([random_hit_at_k(int(r), n, k) for r in pos]))
    out["map_videocon"] = out["map"]
    return out


def majority_baseline(answers: Sequence[str], types: Sequence[str]) -> pd.DataFrame:
    """Per question type (and 'all'): the most frequent (normalised) answer and the share of questions it answers.

    Returns columns type, majority_answer, accuracy, questions; 'all' weighs the types by their questions.
    """
    df = pd.DataFrame({"type": list(types), "answer": [normalize_answer(a) for a in answers]})
    rows = []
    for t, group in df.groupby("type", sort=False):
        counts = group["answer"].value_counts()
        rows.append({"type": t, "majority_answer": counts.index[0], "accuracy": counts.iloc[0] / len(group),
                     "questions": len(group)})
    out = pd.DataFrame(rows)
    total = out["questions"].sum()
    overall = {"type": "all", "majority_answer": "(per type)",
               "accuracy": float((out["accuracy"] * out["questions"]).sum() / total), "questions": int(total)}
    return pd.concat([out, pd.DataFrame([overall])], ignore_index=True)
