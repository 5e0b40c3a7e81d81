"""Text-to-video retrieval metrics on a (queries x videos) score matrix.

Every function takes `scores` (float, shape (n_queries, n_videos): higher means "more likely a match")
and `match` (bool, same shape: True where the video is a positive for the query) and returns one value
per query; the registry in `hacalib.metrics` averages them (mAP, R@k are means over queries).

Three conventions live here, because bf16 scores tie a lot and each convention breaks ties differently:
- `average_precision`: scikit-learn's `average_precision_score`, tied scores grouped (the primary number);
- `hit_at_k`: VideoCon's R@k definition (a query counts when at least one positive is in the top k), with
  ties at the k-th place resolved by their exact expectation under uniformly random tie-breaking;
- `videocon_ap` / `videocon_hit_at_k`: VideoCon's `src/calc_ssv2.py` as written: columns in videopath order,
  `np.argsort(-score)`, ties broken by whatever order that sort leaves (a second, labelled number).
`ap_ties_broken` and `tie_summary` bound and count how much the ties matter.

May import: numpy, sklearn.
"""

from __future__ import annotations

from math import comb

import numpy as np
from sklearn.metrics import average_precision_score


def check_matrix(scores, match) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert a score matrix and its match matrix.

    Args:
        scores: array-like (n_queries, n_videos) of finite floats.
        match: array-like of the same shape; truthy where the video is a positive for the query.
    Returns (scores as float64, match as bool). Raises ValueError naming the first bad query.
    """
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(match)
    if s.ndim != 2 or m.shape != s.shape:
        raise ValueError(f"scores {s.shape} and match {m.shape} must be equal 2-D (queries x videos) shapes")
    if s.shape[1] == 0:
        raise ValueError("score matrix has no videos")
    if not np.isin(m, (0, 1)).all():
        raise ValueError("match must hold only 0/1 or False/True")
    m = m.astype(bool)
    bad = ~np.isfinite(s).all(axis=1)
    if bad.any():
        raise ValueError(f"query {int(np.flatnonzero(bad)[0])} has a non-finite score")
    empty = ~m.any(axis=1)
    if empty.any():
        raise ValueError(f"query {int(np.flatnonzero(empty)[0])} has no positive video: average precision is undefined")
    return s, m


def average_precision(scores, match) -> np.ndarray:
    """Per-query average precision as scikit-learn computes it (tied scores form one threshold)."""
    s, m = check_matrix(scores, match)
    return np.array([average_precision_score(mi, si) for si, mi in zip(s, m)])


def _ap_of_order(rel: np.ndarray) -> float:
    """Non-interpolated AP of one strict ranking: mean precision at the rank of each positive."""
    hits = np.cumsum(rel)
    precision = hits / np.arange(1, len(rel) + 1)
    return float(precision[rel].sum() / rel.sum())


def ap_ties_broken(scores, match, *, favour_positives: bool) -> np.ndarray:
    """Per-query AP with every tie broken for (True) or against (False) the positives: the two bounds."""
    s, m = check_matrix(scores, match)
    out = []
    for si, mi in zip(s, m):
        # lexsort sorts by the last key first: score descending, then positives first (or last) within a tie
        order = np.lexsort((~mi if favour_positives else mi, -si))
        out.append(_ap_of_order(mi[order]))
    return np.array(out)


def hit_at_k(scores, match, k: int) -> np.ndarray:
    """Per-query probability that at least one positive is among the k highest-scored videos.

    VideoCon's R@k definition (a hit, not the fraction of positives retrieved). A tie group straddling
    rank k is resolved by the exact expectation under uniformly random tie-breaking, so the value is
    deterministic and unbiased; without ties it is 0 or 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    s, m = check_matrix(scores, match)
    k = min(k, s.shape[1])
    out = []
    for si, mi in zip(s, m):
        kth = np.sort(si)[::-1][k - 1]
        above, tied = si > kth, si == kth
        if (mi & above).any():
            out.append(1.0)
            continue
        g, need, pos_tied = int(tied.sum()), k - int(above.sum()), int((mi & tied).sum())
        # P(no positive among `need` drawn from the g tied videos, pos_tied of them positive)
        out.append(1.0 - comb(g - pos_tied, need) / comb(g, need))
    return np.array(out)


def _videocon_orders(s: np.ndarray, sort_kind: str | None) -> np.ndarray:
    return np.stack([np.argsort(-si) if sort_kind is None else np.argsort(-si, kind=sort_kind) for si in s])


def videocon_ap(scores, match, *, sort_kind: str | None = None) -> np.ndarray:
    """Per-query AP exactly as VideoCon's `calc_ssv2.py`: rank by `np.argsort(-score)`, mean precision at hits.

    Columns must be in VideoCon's order (videos sorted by videopath, see `videocon_order`). `sort_kind=None`
    is numpy's default sort, as their script uses; its order among ties depends on the numpy build and CPU
    (SIMD sorts), so pass "stable" for a platform-independent variant of the same convention.
    """
    s, m = check_matrix(scores, match)
    return np.array([_ap_of_order(mi[o]) for mi, o in zip(m, _videocon_orders(s, sort_kind))])


def videocon_hit_at_k(scores, match, k: int, *, sort_kind: str | None = None) -> np.ndarray:
    """Per-query hit (0/1) of at least one positive in the top k of VideoCon's `np.argsort(-score)` ranking."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    s, m = check_matrix(scores, match)
    return np.array([float(mi[o[:k]].any()) for mi, o in zip(m, _videocon_orders(s, sort_kind))])


def videocon_order(videos) -> np.ndarray:
    """Column permutation that puts videos in VideoCon's order (sorted by videopath, as their script does)."""
    return np.argsort(np.asarray(videos, dtype=object), kind="stable")


def tie_summary(scores, match) -> dict:
    """Count ties, over all queries.

    Returns a dict:
        tied_groups: score values shared by two or more videos of the same query;
        tied_videos: (query, video) pairs inside such a group;
        positives_tied_with_negative: positives sharing their score with at least one negative of the
            same query (their rank, and so AP, depends on how ties are broken);
        tied_positive_negative_pairs: (positive, negative) pairs of the same query with equal scores;
        positives, pairs: totals, for scale.
    """
    s, m = check_matrix(scores, match)
    groups = videos = pos_tied = pairs_tied = 0
    for si, mi in zip(s, m):
        _, inverse, counts = np.unique(si, return_inverse=True, return_counts=True)
        pos = np.bincount(inverse, weights=mi, minlength=len(counts)).astype(int)
        neg = counts - pos
        groups += int((counts > 1).sum())
        videos += int(counts[counts > 1].sum())
        pos_tied += int(pos[neg > 0].sum())
        pairs_tied += int((pos * neg).sum())
    return {
        "tied_groups": groups,
        "tied_videos": videos,
        "positives_tied_with_negative": pos_tied,
        "tied_positive_negative_pairs": pairs_tied,
        "positives": int(m.sum()),
        "pairs": int(m.size),
    }
