"""From per-item results of several (row, seed) runs to the paper's tables: values with 95% CIs.

A *row* is a model (pretrained, entail, haca, haca_mask); a *run* is one (row, base, seed): a fine-tuning seed on
one base model (pretraining seed); the pretrained row has one run per base model. Runs of several model families
are keyed (family, row, base, seed): every function below then works per family and its tables start with a
`family` column (`FAMILY_LABELS` names it in reading tables); two families' runs are never compared or pooled. Per-item frames carry one 0/1 or
real value per item and metric (e.g. ClassicVLE correctness per VELOCITI pair, AP per retrieval query).
`summarize_runs` turns them into one line per (row, group, metric): the mean over base models, seeds and items with
a 95% interval that covers all three (`hacalib.metrics.nested_interval`); `hacalib.report.claims` does the same for the
paired difference of two rows.
Runs whose P(yes) is constant are collapsed (`hacalib.metrics.is_collapsed`): they are left out of every number
and counted in the `collapsed_runs` column; a row whose runs all collapsed shows no value, never a number.

May import: numpy, pandas, `hacalib.config`, `hacalib.metrics`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import FAMILY_LABELS, OBJECTIVES
from ..metrics import classic_vle, is_collapsed, nested_interval, pyes_spread, strict_vle
from ..metrics.retrieval import average_precision, hit_at_k, videocon_ap

ROWS = ("pretrained", *OBJECTIVES)  # the base model, then one row per fine-tuning objective
ROW_LABELS = {"pretrained": "Pretrained", "entail": "Entail-only FT", "haca": "HACA", "haca_mask": "HACA + mask"}


def by_family(runs: dict[tuple, object]) -> dict[str | None, dict[tuple, object]]:
    """family -> {(row, base, seed): value} of runs keyed (family, row, base, seed); runs keyed without a family
    are one family, None."""
    out: dict[str | None, dict[tuple, object]] = {}
    for key, value in runs.items():
        family, rest = (key[0], key[1:]) if len(key) == 4 else (None, key)
        out.setdefault(family, {})[rest] = value
    return out


def with_family(frames: dict[str | None, pd.DataFrame]) -> pd.DataFrame:
    """One frame from per-family frames, a `family` column first (none when the only family is None)."""
    if list(frames) == [None]:
        return frames[None]
    return pd.concat([df.assign(family=family)[["family", *df.columns]] for family, df in frames.items()],
                     ignore_index=True)


def family_collapsed(collapsed, family: str | None) -> set[tuple]:
    """The (row, base, seed) runs of `family` in a `collapsed_runs` set."""
    return {k[1:] if len(k) == 4 else k for k in collapsed if (k[0] if len(k) == 4 else None) == family}


def row_label(row: str, family: str | None = None) -> str:
    """'HACA', or 'VideoChat2 HACA' for a run of a named family."""
    label = ROW_LABELS.get(row, row)
    return f"{FAMILY_LABELS.get(family, family)} {label}" if family else label


def collapse_report(runs: dict[tuple, np.ndarray]) -> pd.DataFrame:
    """One line per run (row, base, seed): the spread of its P(yes) values and whether it collapsed (a `family`
    column first for runs keyed by family)."""
    families = by_family(runs)
    if list(families) != [None]:
        return with_family({f: collapse_report(r) for f, r in families.items()})
    rows = []
    for key, scores in runs.items():
        row, base, seed = run_key(key)
        rows.append({"row": row, "base": base, "seed": seed, **pyes_spread(scores),
                     "collapsed": bool(is_collapsed(scores))})
    return pd.DataFrame(rows)


def collapsed_runs(report: pd.DataFrame) -> set[tuple[str, int, int]]:
    """The (row, base, seed) runs a `collapse_report` flags (with the family first when it has one): the
    `collapsed` argument of `summarize_runs`."""
    columns = [c for c in ("family", "row", "base", "seed") if c in report.columns]
    return set(report.loc[report["collapsed"], columns].itertuples(index=False, name=None))


def velociti_per_item(items: pd.DataFrame) -> pd.DataFrame:
    """ClassicVLE / StrictVLE correctness of every VELOCITI pair (columns test, classic_vle, strict_vle) and the
    pair's StrictVLE chance (`strict_vle_chance`): what a scorer with the same two P(yes) values would get if a coin
    decided which of them goes to the true description. It is half where exactly one value is above 0.5 and 0
    otherwise, so it follows the row's own P(yes): a row whose P(yes) never crosses 0.5 has chance 0 there."""
    p_pos, p_neg = items["p_pos"].to_numpy(float), items["p_neg"].to_numpy(float)
    return pd.DataFrame({"test": items["test"].to_numpy(),
                         "classic_vle": classic_vle(p_pos, p_neg).astype(float),
                         "strict_vle": strict_vle(p_pos, p_neg).astype(float),
                         "strict_vle_chance": 0.5 * (strict_vle(p_pos, p_neg) + strict_vle(p_neg, p_pos))})


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



def run_key(key: tuple) -> tuple[str, int, int]:
    """(row, base seed, fine-tuning seed) of a run key; a (row, seed) key is a run of base model 0."""
    if len(key) == 3:
        return key[0], int(key[1]), int(key[2])
    if len(key) == 2:
        return key[0], 0, int(key[1])
    raise ValueError(f"a run key is (row, base, seed) or (row, seed), got {key!r}")


def usable_runs(per_item: dict[tuple, pd.DataFrame], row: str, collapsed) -> dict[tuple[int, int], pd.DataFrame]:
    """(base, seed) -> frame of the usable runs of `row` (collapsed runs left out)."""
    dropped = {run_key(k) for k in collapsed}
    out = {}
    for k, df in per_item.items():
        r, b, s = run_key(k)
        if r == row and (r, b, s) not in dropped:
            out[(b, s)] = df
    return dict(sorted(out.items()))


def select_group(df: pd.DataFrame, group: str, value) -> pd.DataFrame:
    return df if group == "all" else df[df[group] == value]


def summarize_runs(per_item: dict[tuple, pd.DataFrame], group: str, metrics: Sequence[str], *,
                   collapsed: set[tuple] = frozenset(), bounds: tuple[float, float] | None = (0.0, 1.0)
                   ) -> pd.DataFrame:
    """Tidy summary: row, <group>, metric, value, ci_low, ci_high, ci, bases, runs, items, collapsed_runs.

    Every interval is `hacalib.metrics.nested_interval`: over base models, fine-tuning seeds and items.

    Args:
        per_item: (row, base, seed) -> per-item frame with column `group` and the metric columns
            ((row, seed) keys are runs of base model 0).
        group: the grouping column (e.g. "test", "misalignment", "benchmark", "type"); "all" pools every item.
        metrics: metric columns to summarise (means of per-item values).
        collapsed: runs to leave out (see `collapse_report`).
        bounds: the metric's range; a t-interval over few runs can reach past it and is clipped to it
            (None: no clipping, for unbounded metrics).
    """
    families = by_family(per_item)
    if list(families) != [None]:
        return with_family({f: summarize_runs(runs, group, metrics, collapsed=family_collapsed(collapsed, f),
                                              bounds=bounds) for f, runs in families.items()})
    lines = []
    names = list(dict.fromkeys(run_key(k)[0] for k in per_item))
    rows = [r for r in ROWS if r in names] + [r for r in names if r not in ROWS]
    for row in rows:
        every = [k for k in per_item if run_key(k)[0] == row]
        usable = usable_runs(per_item, row, collapsed)
        groups = list(dict.fromkeys(per_item[every[0]][group])) if group != "all" else ["all"]
        for g in groups:
            for m in metrics:
                line = {"row": row, group: g, "metric": m, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                        "ci": "", "bases": len({b for b, _ in usable}), "runs": len(usable), "items": 0,
                        "collapsed_runs": len(every) - len(usable)}
                if usable:
                    values = {k: select_group(df, group, g)[m].to_numpy(dtype=float) for k, df in usable.items()}
                    ci = nested_interval(values)
                    line.update(value=ci.value, ci_low=ci.low, ci_high=ci.high, ci=ci.method,
                                items=int(next(iter(values.values())).size))
                    if bounds is not None and np.isfinite(ci.low):
                        line["ci_low"], line["ci_high"] = max(ci.low, bounds[0]), min(ci.high, bounds[1])
                lines.append(line)
    return pd.DataFrame(lines)


def summarize_with_overall(per_item: dict[tuple, pd.DataFrame], group: str, metrics: Sequence[str],
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


def interval_table(summary: pd.DataFrame, index: str, columns: str, *, scale: float = 100.0) -> pd.DataFrame:
    """Any two columns of a summary as a reading grid: cells 'value [low, high]', lines and columns in their order of
    first appearance (e.g. index 'test', columns 'mask_ratio')."""
    table = summary.assign(cell=[format_cell(v, lo, hi, scale) for v, lo, hi in
                                 zip(summary["value"], summary["ci_low"], summary["ci_high"])])
    out = table.pivot(index=index, columns=columns, values="cell")
    out = out.reindex(index=list(dict.fromkeys(summary[index])), columns=list(dict.fromkeys(summary[columns])))
    return out.rename_axis(index=None, columns=None)


def pivot(summary: pd.DataFrame, columns: str, metric: str, *, scale: float = 100.0) -> pd.DataFrame:
    """A reading table: one line per model row, one column per `columns` value, cells 'value [low, high]'; a summary
    with a `family` column gives each family's rows in turn, the family named in a first column."""
    if "family" in summary.columns:
        parts = [pivot(summary[summary["family"] == f].drop(columns="family"), columns, metric, scale=scale)
                 for f in dict.fromkeys(summary["family"])]
        labels = [FAMILY_LABELS.get(f, f) for f in dict.fromkeys(summary["family"])]
        return pd.concat([p.assign(family=label)[["family", *p.columns]] for p, label in zip(parts, labels)],
                         ignore_index=True)
    sel = summary[summary["metric"] == metric]
    table = sel.assign(cell=[format_cell(v, lo, hi, scale) for v, lo, hi in
                             zip(sel["value"], sel["ci_low"], sel["ci_high"])])
    out = table.pivot(index="row", columns=columns, values="cell")
    out = out.reindex([r for r in ROWS if r in out.index] + [r for r in out.index if r not in ROWS])
    out = out[list(dict.fromkeys(sel[columns]))]
    out.index = [ROW_LABELS.get(r, r) for r in out.index]
    return out.reset_index(names="model").rename_axis(columns=None)


def with_chance_row(table: pd.DataFrame, chance: Mapping[str, float], label: str = "chance", *,
                    scale: float = 100.0) -> pd.DataFrame:
    """A `pivot` reading table with a last line that gives the chance level of each column (e.g. 50.0 for
    ClassicVLE, a random ranking's exact expectation for mAP and R@k); columns without one stay empty."""
    line = {c: (f"{chance[c] * scale:.1f}" if c in chance else "") for c in table.columns}
    line.update({"model": label, **({"family": "all"} if "family" in table.columns else {})})
    return pd.concat([table, pd.DataFrame([line])], ignore_index=True)


def collapse_line(report: pd.DataFrame, row: str = "row") -> str:
    """One line for a `collapse_report` (its model column named `row`): which runs collapsed (if any) and, per row,
    the highest P(yes) its runs reach (StrictVLE and 'confirmed' counts need P(yes) above 0.5); the table itself
    goes to figures/."""
    keys = ["family", row] if "family" in report.columns else [row]
    bad = report[report["collapsed"]]
    head = (f"No run of {len(report)} collapsed (P(yes) constant)." if bad.empty else
            f"{len(bad)} of {len(report)} runs collapsed (P(yes) constant) and are left out: "
            + ", ".join(f"{row_label(str(r[row]), r.get('family'))} base {r['base']} seed {r['seed']}"
                        for r in bad.to_dict("records")) + ".")
    parts = []
    for key, part in report.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = row_label(str(key[-1]), key[0]) if len(key) == 2 else row_label(str(key[0]))
        parts.append(f"{name} {part['max'].max():.2f}")
    return head + " Highest P(yes) per row: " + ", ".join(parts) + "."
