"""From per-item results of several (row, seed) runs to the paper's tables: values with 95% CIs.

A *row* is a model (pretrained, entail, haca, haca_mask); a *run* is one (row, seed). Per-item frames carry one
0/1 or real value per item and metric (e.g. ClassicVLE correctness per VELOCITI pair, AP per retrieval query).
`summarize_runs` turns them into one line per (row, group, metric):
- several seeds: the mean of the per-seed means, with a Student-t 95% interval over seeds;
- one seed (the pretrained model has no fine-tuning seed): a seeded percentile bootstrap over items.
Runs whose P(yes) is constant are collapsed (`hacalib.metrics.is_collapsed`): they are left out of every number
and counted in the `collapsed_runs` column; a row whose runs all collapsed shows no value, never a number.

May import: numpy, pandas, `hacalib.config`, `hacalib.metrics`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..config import OBJECTIVES
from ..metrics import bootstrap_ci, classic_vle, is_collapsed, pyes_spread, strict_vle, t_interval
from ..metrics.retrieval import average_precision, hit_at_k, videocon_ap

ROWS = ("pretrained", *OBJECTIVES)  # the base model, then one row per fine-tuning objective
ROW_LABELS = {"pretrained": "Pretrained", "entail": "Entail-only FT", "haca": "HACA", "haca_mask": "HACA + mask"}


def collapse_report(runs: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    """One line per run: the spread of its P(yes) values and whether it collapsed."""
    rows = []
    for (row, seed), scores in runs.items():
        rows.append({"row": row, "seed": seed, **pyes_spread(scores), "collapsed": bool(is_collapsed(scores))})
    return pd.DataFrame(rows)


def collapsed_runs(report: pd.DataFrame) -> set[tuple[str, int]]:
    """The (row, seed) runs a `collapse_report` flags: the `collapsed` argument of `summarize_runs`."""
    return set(report.loc[report["collapsed"], ["row", "seed"]].itertuples(index=False, name=None))


def velociti_per_item(items: pd.DataFrame) -> pd.DataFrame:
    """ClassicVLE / StrictVLE correctness of every VELOCITI pair (columns test, classic_vle, strict_vle)."""
    return pd.DataFrame({"test": items["test"].to_numpy(),
                         "classic_vle": classic_vle(items["p_pos"], items["p_neg"]).astype(float),
                         "strict_vle": strict_vle(items["p_pos"], items["p_neg"]).astype(float)})


def pairwise_per_item(pairs: pd.DataFrame) -> pd.DataFrame:
    """Held-out VideoCon: whether P(yes | true caption) > P(yes | contrast caption), per misalignment type."""
    return pd.DataFrame({"misalignment": pairs["misalignment"].to_numpy(),
                         "pairwise_acc": classic_vle(pairs["p_true"], pairs["p_false"]).astype(float)})


def retrieval_per_query(scores: np.ndarray, match: np.ndarray, name: str) -> pd.DataFrame:
    """AP (ties grouped), R@1/5/10 and VideoCon's AP convention for every query of one retrieval matrix."""
    out = pd.DataFrame({"benchmark": name, "map": average_precision(scores, match),
                        "map_videocon": videocon_ap(scores, match, sort_kind="stable")})
    for k in (1, 5, 10):
        out[f"R@{k}"] = hit_at_k(scores, match, k)
    return out



def summarize_runs(per_item: dict[tuple[str, int], pd.DataFrame], group: str, metrics: Sequence[str], *,
                   collapsed: set[tuple[str, int]] = frozenset(), n_resamples: int = 2000,
                   seed: int = 0, bounds: tuple[float, float] | None = (0.0, 1.0)) -> pd.DataFrame:
    """Tidy summary: row, <group>, metric, value, ci_low, ci_high, ci, seeds, items, collapsed_runs.

    Args:
        per_item: (row, seed) -> per-item frame with column `group` and the metric columns.
        group: the grouping column (e.g. "test", "misalignment", "benchmark", "type"); "all" pools every item.
        metrics: metric columns to summarise (means of per-item values).
        collapsed: runs to leave out (see `collapse_report`).
        n_resamples, seed: the bootstrap for single-seed rows.
        bounds: the metric's range; a t-interval over few seeds can reach past it and is clipped to it
            (None: no clipping, for unbounded metrics).
    """
    lines = []
    rows = [r for r in ROWS if any(k[0] == r for k in per_item)] + \
        sorted({k[0] for k in per_item} - set(ROWS))
    for row in rows:
        runs = {s: df for (r, s), df in sorted(per_item.items()) if r == row}
        usable = {s: df for s, df in runs.items() if (row, s) not in collapsed}
        frames = [df.assign(_seed=s) for s, df in usable.items()]
        pooled = pd.concat(frames) if frames else None
        groups = list(dict.fromkeys(next(iter(runs.values()))[group])) if group != "all" else ["all"]
        for g in groups:
            for m in metrics:
                line = {"row": row, group: g, "metric": m, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                        "ci": "", "seeds": len(usable), "items": 0, "collapsed_runs": len(runs) - len(usable)}
                if pooled is not None:
                    sel = pooled if group == "all" else pooled[pooled[group] == g]
                    per_seed = sel.groupby("_seed")[m].mean().to_numpy()
                    line["items"] = int(len(sel) / max(len(usable), 1))
                    if len(usable) >= 2:
                        line["value"], line["ci_low"], line["ci_high"] = t_interval(per_seed)
                        line["ci"] = "t over seeds"
                        if bounds is not None:
                            line["ci_low"] = max(line["ci_low"], bounds[0])
                            line["ci_high"] = min(line["ci_high"], bounds[1])
                    else:
                        x = sel[m].to_numpy(dtype=float)
                        line["value"] = float(x.mean()) if x.size else np.nan
                        line["ci_low"], line["ci_high"] = bootstrap_ci(x, n_resamples=n_resamples, seed=seed)
                        line["ci"] = "bootstrap over items"
                lines.append(line)
    return pd.DataFrame(lines)


def summarize_with_overall(per_item: dict[tuple[str, int], pd.DataFrame], group: str, metrics: Sequence[str],
                           **kwargs) -> pd.DataFrame:
    """`summarize_runs` per value of `group`, then over every item as the group value "all": one grouping column,
    so the table has no empty cells and `pivot` shows "all" as its last column. `kwargs` go to `summarize_runs`."""
    by_group = summarize_runs(per_item, group, metrics, **kwargs)
    overall = summarize_runs(per_item, "all", metrics, **kwargs).rename(columns={"all": group})
    return pd.concat([by_group, overall], ignore_index=True)


def format_cell(value: float, low: float, high: float, scale: float = 100.0, digits: int = 1) -> str:
    """'61.2 [58.1, 64.3]' (percent by default); a value-less cell reads 'collapsed'."""
    if not np.isfinite(value):
        return "collapsed"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value * scale:.{digits}f}"
    return f"{value * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def pivot(summary: pd.DataFrame, columns: str, metric: str, *, scale: float = 100.0) -> pd.DataFrame:
    """A reading table: one line per model row, one column per `columns` value, cells 'value [low, high]'."""
    sel = summary[summary["metric"] == metric]
    table = sel.assign(cell=[format_cell(v, lo, hi, scale) for v, lo, hi in
                             zip(sel["value"], sel["ci_low"], sel["ci_high"])])
    out = table.pivot(index="row", columns=columns, values="cell")
    out = out.reindex([r for r in ROWS if r in out.index] + [r for r in out.index if r not in ROWS])
    out = out[list(dict.fromkeys(sel[columns]))]
    out.index = [ROW_LABELS.get(r, r) for r in out.index]
    return out.reset_index(names="model").rename_axis(columns=None)


def per_seed_values(per_item: dict[tuple[str, int], pd.DataFrame], row: str, group: str, group_value: str,
                    metric: str, collapsed: set[tuple[str, int]] = frozenset()) -> dict[int, float]:
    """seed -> the metric's mean over one group's items, for the usable (not collapsed) runs of `row`."""
    out = {}
    for (r, s), df in per_item.items():
        if r != row or (r, s) in collapsed:
            continue
        sel = df if group == "all" else df[df[group] == group_value]
        out[s] = float(sel[metric].mean())
    return out


def claim_check(per_item: dict[tuple[str, int], pd.DataFrame], group: str, metric: str,
                claims: Sequence[tuple[str, str, str, str]], *,
                collapsed: set[tuple[str, int]] = frozenset(), scale: float = 100.0) -> pd.DataFrame:
    """Test claims "row A beats row B on group G": the difference A - B with a 95% t-interval over seeds.

    Seeds are paired (the same seed shares the data order across objectives); a single-run row (the pretrained
    model) enters as a constant. Verdict: 'supported' when the whole interval is above 0, 'contradicted' when it
    is below 0, 'inconclusive' otherwise (or 'n/a' when a row has no usable run).
    """
    lines = []
    for label, a, b, g in claims:
        va = per_seed_values(per_item, a, group, g, metric, collapsed)
        vb = per_seed_values(per_item, b, group, g, metric, collapsed)
        if not va or not vb:
            lines.append({"claim": label, "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "seeds": 0,
                          "verdict": "n/a (collapsed or missing)"})
            continue
        if len(va) > 1 and len(vb) > 1:
            common = sorted(set(va) & set(vb))
            diffs = np.array([va[s] - vb[s] for s in common])
        elif len(va) > 1:
            diffs = np.array(list(va.values())) - next(iter(vb.values()))
        elif len(vb) > 1:
            diffs = next(iter(va.values())) - np.array(list(vb.values()))
        else:
            diffs = np.array([next(iter(va.values())) - next(iter(vb.values()))])
        mean, low, high = t_interval(diffs) if diffs.size > 1 else (float(diffs[0]), np.nan, np.nan)
        verdict = ("supported" if low > 0 else "contradicted" if high < 0 else "inconclusive") \
            if np.isfinite(low) else "inconclusive (one seed)"
        lines.append({"claim": label, "difference": mean * scale, "ci_low": low * scale, "ci_high": high * scale,
                      "seeds": int(diffs.size), "verdict": verdict})
    return pd.DataFrame(lines)
