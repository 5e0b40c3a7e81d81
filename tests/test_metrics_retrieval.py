"""Retrieval metrics: hand-computed AP / R@k with ties, VideoCon's convention, and the fixture numbers."""

from math import comb

import numpy as np
import pandas as pd
import pytest

from hacalib.metrics import (
    METRICS,
    ap_ties_broken,
    average_precision,
    hit_at_k,
    tie_summary,
    videocon_ap,
    videocon_hit_at_k,
    videocon_order,
)

# query 0: no ties, positives at ranks 1 and 3
# query 1: the positive ties with one negative at ranks 2-3
# query 2: all four videos tied, two positives
SCORES = np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.5, 0.5, 0.1], [0.7, 0.7, 0.7, 0.7]])
MATCH = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]], dtype=bool)


def test_average_precision_groups_ties():
    # q1: one threshold at 0.5 holding 1 positive + 1 negative + the 0.9 negative above: precision 1/3
    # q2: one threshold, precision 2/4
    assert average_precision(SCORES, MATCH) == pytest.approx([(1 + 2 / 3) / 2, 1 / 3, 1 / 2])
    assert METRICS["map"](SCORES, MATCH) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3 + 1 / 2) / 3)


def test_ties_broken_for_and_against_positives():
    assert ap_ties_broken(SCORES, MATCH, favour_positives=True) == pytest.approx([5 / 6, 1 / 2, 1.0])
    assert ap_ties_broken(SCORES, MATCH, favour_positives=False) == pytest.approx([5 / 6, 1 / 3, (1 / 3 + 2 / 4) / 2])


def test_hit_at_k_resolves_ties_by_expectation():
    assert hit_at_k(SCORES, MATCH, 1) == pytest.approx([1, 0, 1 - comb(2, 1) / comb(4, 1)])
    # q1 at k=2: one slot left for the two tied videos, one of them positive -> 1/2
    assert hit_at_k(SCORES, MATCH, 2) == pytest.approx([1, 0.5, 1 - comb(2, 2) / comb(4, 2)])
    assert hit_at_k(SCORES, MATCH, 3) == pytest.approx([1, 1, 1])
    assert hit_at_k(SCORES, MATCH, 10) == pytest.approx([1, 1, 1])  # k beyond the gallery: any positive
    assert METRICS["R@1"](SCORES, MATCH) == pytest.approx((1 + 0 + 0.5) / 3)


def test_hit_at_k_matches_random_tie_breaking():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, size=(6, 30)).astype(float)  # heavy ties
    m = rng.random((6, 30)) < 0.15
    m[:, 0] = True
    draws = []
    for _ in range(3000):
        jitter = s + rng.random(s.shape) * 1e-3  # random order inside each tie group
        draws.append(hit_at_k(jitter, m, 5))
    assert hit_at_k(s, m, 5) == pytest.approx(np.mean(draws, axis=0), abs=0.04)


def test_videocon_convention_on_hand_case():
    # stable argsort keeps column order inside ties: q1's positive (column 1) is ranked before column 2
    assert videocon_ap(SCORES, MATCH, sort_kind="stable") == pytest.approx([5 / 6, 1 / 2, 1.0])
    assert videocon_ap(SCORES[:, ::-1], MATCH[:, ::-1], sort_kind="stable")[1] == pytest.approx(1 / 3)
    assert videocon_hit_at_k(SCORES, MATCH, 1, sort_kind="stable").tolist() == [1, 0, 1]
    assert videocon_order(["b.avi", "a.avi", "c.avi"]).tolist() == [1, 0, 2]


def test_all_conventions_agree_without_ties():
    rng = np.random.default_rng(2)
    s = rng.random((5, 40))
    m = rng.random((5, 40)) < 0.2
    m[:, 3] = True
    ap = average_precision(s, m)
    best, worst = ap_ties_broken(s, m, favour_positives=True), ap_ties_broken(s, m, favour_positives=False)
    for other in (videocon_ap(s, m), best, worst):
        assert other == pytest.approx(ap)
    for k in (1, 5, 10):
        assert hit_at_k(s, m, k).tolist() == videocon_hit_at_k(s, m, k).tolist()


def test_tie_summary_counts():
    assert tie_summary(SCORES, MATCH) == {
        "tied_groups": 2,  # q1's 0.5 pair, q2's group of four
        "tied_videos": 6,
        "positives_tied_with_negative": 3,
        "tied_positive_negative_pairs": 1 + 4,
        "positives": 5,
        "pairs": 12,
    }


@pytest.mark.parametrize(
    "scores,match,msg",
    [(SCORES, MATCH[:, :3], "shapes"), (SCORES, np.zeros_like(MATCH), "query 0 has no positive"),
     (np.where(MATCH, np.nan, SCORES), MATCH, "non-finite"), (SCORES, MATCH * 2, "0/1")],
)
def test_bad_matrices_raise(scores, match, msg):
    with pytest.raises(ValueError, match=msg):
        average_precision(scores, match)


def _real_matrix():
    from hacalib.samples import SSV2_TEMPORAL_MATRIX, SSV2_TEMPORAL_SCORES

    m = pd.read_csv(SSV2_TEMPORAL_MATRIX)
    s = pd.read_csv(SSV2_TEMPORAL_SCORES, names=["videopath", "caption", "entailment", "pos", "neg"])
    match = m.pivot(index="caption", columns="videopath", values="match")
    scores = s.pivot(index="caption", columns="videopath", values="entailment").loc[match.index, match.columns]
    order = videocon_order(match.columns)
    return scores.to_numpy()[:, order], match.to_numpy().astype(bool)[:, order]


def test_real_scores_reproduce_videocon_numbers():
    s, m = _real_matrix()
    assert s.shape == (18, 216) and m.sum(axis=1).tolist() == [12] * 18
    # VideoCon's calc_ssv2.py gives 15.5; the exact tie order of numpy's default sort is build/CPU dependent
    assert 100 * METRICS["map_videocon"](s, m) == pytest.approx(15.5, abs=0.05)
    assert 100 * videocon_ap(s, m, sort_kind="stable").mean() == pytest.approx(15.5006, abs=1e-3)
    assert 100 * METRICS["map_ties_best"](s, m) == pytest.approx(21.867, abs=1e-3)
    assert 100 * METRICS["map_ties_worst"](s, m) == pytest.approx(11.646, abs=1e-3)
    assert 100 * METRICS["map"](s, m) == pytest.approx(13.566, abs=1e-3)  # scikit-learn, ties grouped
    assert METRICS["map_ties_worst"](s, m) <= METRICS["map"](s, m) <= METRICS["map_ties_best"](s, m)
