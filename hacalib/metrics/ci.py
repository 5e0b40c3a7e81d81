"""95% confidence intervals: over base models, fine-tuning seeds and items; bootstrap; t over seeds.

- `nested_interval`: the interval every comparison table uses: runs nested in base models (pretraining seeds),
  the same items scored by every run; it covers all three sources of variance a replication meets.
- `bootstrap_ci`: seeded percentile bootstrap (scipy.stats.bootstrap) of an aggregate over per-item
  values, e.g. ClassicVLE's 0/1 per pair or AP per query. Says how much the number depends on which
  items the benchmark happened to contain.
- `t_interval`: mean +/- t_{n-1} * s / sqrt(n) over per-seed results, the right small-n interval for
  3-5 training seeds (a bootstrap over 3 values is degenerate).
These two return plain floats; `summarize_seeds` turns a tidy per-seed table into one row per group with
columns value, ci_low, ci_high, n, std.

May import: numpy, pandas, scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

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


# ----------------------------------------------------------------------------- base models, seeds and items


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval and how it was made.

    Attributes:
        value, low, high: the mean and the interval (nan where it cannot be estimated).
        df: the t distribution's degrees of freedom (Welch-Satterthwaite).
        method: 't over base models + items', 't over seeds + items' or 't over items'.
        se_runs, se_items: the two standard-error components (runs at the top level, items).
    """

    value: float
    low: float
    high: float
    df: float
    method: str
    se_runs: float
    se_items: float

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "the mean is 0" under the same t distribution: below 0.05 exactly when the 95%
        interval excludes 0 (nan where there is no interval)."""
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return float("nan")
        se = float(np.hypot(self.se_runs, self.se_items))
        if se == 0.0:  # every value equal: the interval is the point
            return 0.0 if self.value != 0 else 1.0
        return float(2 * stats.t.sf(abs(self.value) / se, self.df))


def nested_interval(runs: Mapping[tuple[int, int], Sequence[float]], *, confidence: float = 0.95) -> Interval:
    """Mean and 95% interval of a per-item metric over runs nested in base models, items crossed with runs.

    The toy experiment's design: base models (pretraining seeds) b, fine-tuning seeds s within each, and the same
    benchmark items i scored by every run. A replication draws new base models and new fine-tuning seeds (and a
    new benchmark would draw new items), so the interval must cover all three:

        value = mean_b mean_s mean_i x[b, s, i]
        se_runs^2  = var_b(M_b) / n_b          M_b = mean_s mean_i x[b, s, i]   (the base model's mean)
        se_items^2 = var_i(y_i) / n_items      y_i = mean_b mean_s x[b, s, i]   (the item's mean over runs)
        value +/- t_{df} * sqrt(se_runs^2 + se_items^2)

    with df from Welch-Satterthwaite. The spread of base-model means already holds the fine-tuning seeds' spread
    (each M_b averages its seeds), so seeds need no term of their own; with one base model the top level is the
    seeds (run means), with one run only items remain. PROTOCOL.md ("Intervals") gives the alternatives and the
    coverage this method reached in simulation at the preset's counts.

    Args:
        runs: (base seed, fine-tuning seed) -> per-item values; every run holds the same items in the same order.
        confidence: interval coverage.
    """
    if not runs:
        raise ValueError("no runs")
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in runs.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"every run must hold the same (non-zero) number of items, got {sorted(sizes)}")
    bases = sorted({b for b, _ in arrays})
    per_base = {b: np.stack([a for (bb, _), a in sorted(arrays.items()) if bb == b]) for b in bases}
    base_items = np.stack([x.mean(axis=0) for x in per_base.values()])  # (bases, items): seeds averaged
    value = float(base_items.mean())
    if len(bases) >= 2:
        top, method = base_items.mean(axis=1), "t over base models + items"
    elif len(arrays) >= 2:
        top, method = per_base[bases[0]].mean(axis=1), "t over seeds + items"
    else:
        top, method = np.array([value]), "t over items"
    item_means = base_items.mean(axis=0)
    var_runs = float(top.var(ddof=1)) / top.size if top.size >= 2 else 0.0
    var_items = float(item_means.var(ddof=1)) / item_means.size if item_means.size >= 2 else 0.0
    total = var_runs + var_items
    if total == 0.0:
        nan_if_single = top.size < 2 and item_means.size < 2
        edge = float("nan") if nan_if_single else value
        return Interval(value, edge, edge, float("nan"), method, 0.0, 0.0)
    denom = (var_runs ** 2 / (top.size - 1) if top.size >= 2 else 0.0) + \
        (var_items ** 2 / (item_means.size - 1) if item_means.size >= 2 else 0.0)
    df = total ** 2 / denom
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * float(np.sqrt(total))
    return Interval(value, value - half, value + half, float(df), method, float(np.sqrt(var_runs)),
                    float(np.sqrt(var_items)))
