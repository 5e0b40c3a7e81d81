"""Metrics: VELOCITI entailment, text-to-video retrieval, offline QA, confidence intervals, collapse check.

`METRICS[name]` is the registry (see `registry.Metric`); the modules hold the per-item functions:
`velociti` (ClassicVLE, StrictVLE), `retrieval` (AP, R@k, VideoCon's convention, tie counts),
`qa` (first answer span / normalised exact match / containment), `ci` (bootstrap and seed intervals), `collapse`.

May import: its own package's modules.
"""

from .ci import Interval, bootstrap_ci, nested_interval, summarize_seeds, t_interval
from .collapse import is_collapsed, pyes_spread
from .qa import contains_answer, exact_match, first_answer_match, first_answer_span, normalize_answer
from .registry import METRICS, Metric, score_table
from .retrieval import (
    ap_ties_broken,
    average_precision,
    hit_at_k,
    tie_summary,
    videocon_ap,
    videocon_hit_at_k,
    videocon_order,
)
from .velociti import classic_vle, strict_vle

__all__ = [
    "Interval",
    "METRICS",
    "Metric",
    "ap_ties_broken",
    "average_precision",
    "bootstrap_ci",
    "classic_vle",
    "contains_answer",
    "exact_match",
    "first_answer_match",
    "first_answer_span",
    "hit_at_k",
    "is_collapsed",
    "nested_interval",
    "normalize_answer",
    "pyes_spread",
    "score_table",
    "strict_vle",
    "summarize_seeds",
    "t_interval",
    "tie_summary",
    "videocon_ap",
    "videocon_hit_at_k",
    "videocon_order",
]
