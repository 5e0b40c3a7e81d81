"""95% confidence intervals: bootstrap over items (one run) and a t-interval over seeds (several runs).

- `bootstrap_ci`: seeded percentile bootstrap (scipy.stats.bootstrap) of an aggregate over per-item
  values, e.g. ClassicVLE's 0/1 per pair or AP per query. Says how much the number depends on which
  items the benchmark happened to contain.
- `t_interval`: mean +/- t_{n-1} * s / sqrt(n) over per-seed results, the right small-n interval for
  3-5 training seeds (a bootstrap over 3 values is degenerate).
Both return plain floats; `summarize_seeds` turns a tidy per-seed table into one row per group with
columns value, ci_low, ci_high, n, std.

May import: numpy, pandas, scipy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_ci(
    values,
    *,
    statistic: Callable = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over items.

    Args:
        values: per-item values (1-D).
        statistic: aggregate taking an array and an `axis` keyword (np.mean for every registered metric).
        confidence: interval coverage, 0.95 for a 95% interval.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator; the same seed gives the same interval.
    Returns (low, high); (nan, nan) for fewer than two items, (v, v) when every item is equal.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < 2:
        return float("nan"), float("nan")
    if (x == x[0]).all():  # scipy warns on degenerate samples; the interval is the point
        v = float(statistic(x, axis=-1))
        return v, v
    res = stats.bootstrap(
        (x,),
        statistic,
        vectorized=True,
        axis=-1,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def t_interval(values, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over independent runs (e.g. seeds): returns (mean, low, high).

    Fewer than two values give (mean, nan, nan); identical values give (mean, mean, mean).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    if (x == x[0]).all():  # zero spread: scipy would return nan for a zero scale
        return mean, mean, mean
    low, high = stats.t.interval(confidence, df=x.size - 1, loc=mean, scale=float(stats.sem(x)))
    return mean, float(low), float(high)


def summarize_seeds(
    df: pd.DataFrame,
    *,
    by: Sequence[str] = ("row", "metric"),
    value: str = "value",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per group of a tidy per-seed table: the mean and its t-interval over seeds.

    Args:
        df: tidy table, one row per (group..., seed) with the result in column `value`.
        by: grouping columns (e.g. model row and metric name); groups keep their first-seen order.
        value: column holding the per-seed result.
        confidence: interval coverage.
    Returns columns [*by, value, ci_low, ci_high, n, std].
    """
    missing = [c for c in (*by, value) if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in table (has {list(df.columns)})")
    rows = []
    for key, group in df.groupby(list(by), sort=False):
        x = group[value].to_numpy(dtype=np.float64)
        mean, low, high = t_interval(x, confidence=confidence)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), value: mean, "ci_low": low, "ci_high": high, "n": int(x.size),
                     "std": float(x.std(ddof=1)) if x.size > 1 else float("nan")})
    return pd.DataFrame(rows, columns=[*by, value, "ci_low", "ci_high", "n", "std"])
