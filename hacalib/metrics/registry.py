"""The metric registry: each metric is a per-item function with a name, a direction and an aggregation.

As in lm-evaluation-harness, a metric's function returns one value per item (a VELOCITI pair, a
retrieval query, a QA question) and its aggregation turns them into the reported number; the bootstrap
interval resamples those same items, so the interval always comes with the metric.
Values are fractions in [0, 1]; tables multiply by 100 for display.

May import: numpy, pandas, its own package's modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import qa, retrieval, velociti
from .ci import bootstrap_ci


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: registry key, also the `metric` column of tidy tables.
        fn: per-item function; its arguments depend on the family (p_pos, p_neg / scores, match /
            predictions, answers).
        higher_is_better: direction, for tables and for picking the better row.
        aggregation: turns the per-item values into one number; must accept `axis` (for the bootstrap).
        help: one line saying what it measures and how ties are handled.
    """

    name: str
    fn: Callable[..., np.ndarray]
    higher_is_better: bool = True
    aggregation: Callable = field(default=np.mean)
    help: str = ""

    def __call__(self, *args, **kwargs) -> float:
        """The aggregated value on these inputs."""
        return float(self.aggregation(self.fn(*args, **kwargs)))

    def with_ci(self, *args, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95, **kwargs) -> dict:
        """The value with a seeded percentile-bootstrap interval over items.

        Returns dict(metric, value, ci_low, ci_high, n, higher_is_better).
        """
        items = np.asarray(self.fn(*args, **kwargs), dtype=np.float64)
        low, high = bootstrap_ci(items, statistic=self.aggregation, confidence=confidence,
                                 n_resamples=n_resamples, seed=seed)
        return {"metric": self.name, "value": float(self.aggregation(items)), "ci_low": low, "ci_high": high,
                "n": int(items.size), "higher_is_better": self.higher_is_better}


def _register(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


METRICS: dict[str, Metric] = _register(
    Metric("classic_vle", velociti.classic_vle, help="VELOCITI ClassicVLE: P(pos) > P(neg); a tie is wrong"),
    Metric("strict_vle", velociti.strict_vle, help="VELOCITI StrictVLE: P(pos) > 0.5 and P(neg) < 0.5; 0.5 fails"),
    Metric("map", retrieval.average_precision, help="mean average precision over queries, ties grouped (scikit-learn)"),
    *(
        Metric(f"R@{k}", partial(retrieval.hit_at_k, k=k),
               help=f"queries with a positive in the top {k}; ties at rank {k} by their expectation")
        for k in (1, 5, 10)
    ),
    Metric("map_videocon", retrieval.videocon_ap,
           help="VideoCon calc_ssv2.py mAP: np.argsort(-score) over videopath-sorted columns"),
    *(
        Metric(f"R@{k}_videocon", partial(retrieval.videocon_hit_at_k, k=k),
               help=f"VideoCon calc_ssv2.py R@{k}: a positive in the top {k} of np.argsort(-score)")
        for k in (1, 5, 10)
    ),
    Metric("map_ties_best", partial(retrieval.ap_ties_broken, favour_positives=True),
           help="mAP with every tie broken in favour of the positives (upper bound)"),
    Metric("map_ties_worst", partial(retrieval.ap_ties_broken, favour_positives=False),
           help="mAP with every tie broken against the positives (lower bound)"),
    Metric("qa_first_answer", qa.first_answer_match,
           help="QA (headline): the prediction's first span, cut at punctuation, begins with the normalised answer"),
    Metric("qa_exact", qa.exact_match, help="QA: normalised prediction equals the normalised answer"),
    Metric("qa_contains", qa.contains_answer, help="QA: normalised answer occurs as whole words in the prediction"),
)


def score_table(
    groups: Mapping[str, tuple],
    metrics: Sequence[str],
    *,
    group_col: str = "test",
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """A tidy table of metrics with bootstrap intervals, one row per (group, metric).

    Args:
        groups: group name -> the metric functions' arguments, e.g. {"agent_bind": (p_pos, p_neg), ...}
            for VELOCITI tests (control included), or {"temporal": (scores, match)} for retrieval.
        metrics: registry names to compute for every group.
        group_col: name of the group column.
        n_resamples, seed: bootstrap over the group's items.
    Returns columns [group_col, metric, value, ci_low, ci_high, n, higher_is_better].
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; registered: {sorted(METRICS)}")
    rows = [
        {group_col: name, **METRICS[m].with_ci(*args, n_resamples=n_resamples, seed=seed)}
        for name, args in groups.items()
        for m in metrics
    ]
    return pd.DataFrame(rows, columns=[group_col, "metric", "value", "ci_low", "ci_high", "n", "higher_is_better"])
