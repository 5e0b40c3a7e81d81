"""The corrections a model writes to held-out contrast captions: how often it says No, and how good the correction
is where it does, beside what copying the contrast caption back would score.

Per-item measures come from `hacalib.scoring.derived.measure_corrections` (NaN where the answer is not No). Saying No
is summarised like every other table (mean over base models, seeds and items, `summarize_runs`). The quality of the
corrections is a ratio over each run's own No answers, whose items differ between runs, so its interval is a t
interval over the runs' values (over base models, or seeds with one base model): items enter only through them.

May import: numpy, pandas, `hacalib.metrics`, `.tables`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import nested_interval
from .tables import by_family, row_label, summarize_runs, with_family

QUALITY = {"exact": "exact correction", "recovered": "changed words recovered",
           "overlap_true": "overlap with the true caption", "overlap_copy": "overlap if the contrast were copied"}


def _quality(runs: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    lines = []
    rows = list(dict.fromkeys(k[0] for k in runs))
    for row in rows:
        mine = {(b, s): df for (r, b, s), df in runs.items() if r == row}
        said_no = {k: df[df["says_no"] == 1] for k, df in mine.items()}
        answered = sum(len(df) for df in said_no.values())
        for metric, label in QUALITY.items():
            values = {k: [df[metric].astype(float).mean()] for k, df in said_no.items() if len(df)}
            line = {"row": row, "metric": metric, "measure": label, "value": np.nan, "ci_low": np.nan,
                    "ci_high": np.nan, "runs": len(values), "no_answers": answered}
            if values:
                ci = nested_interval(values)
                line.update(value=ci.value, ci_low=max(ci.low, 0.0) if np.isfinite(ci.low) else ci.low,
                            ci_high=min(ci.high, 1.0) if np.isfinite(ci.high) else ci.high)
            lines.append(line)
    return pd.DataFrame(lines)


def correction_quality(gens: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Per row: the share of contrast captions answered No (all items), then, over its No answers only, the share
    of exact corrections, of corrections that recover the changed words, the word overlap with the true caption,
    and the copy-the-contrast baseline's overlap on the same items. Columns family (if any), row, metric, measure,
    value, ci_low, ci_high, runs, no_answers."""
    families = by_family(gens)
    if list(families) != [None]:
        return with_family({f: correction_quality(runs) for f, runs in families.items()})
    no = summarize_runs({k: df.assign(all="all") for k, df in gens.items()}, "all", ["says_no"])
    no = no.assign(measure="answers No (all items)", no_answers=np.nan)[
        ["row", "metric", "measure", "value", "ci_low", "ci_high", "runs", "no_answers"]]
    quality = _quality({k if len(k) == 3 else (k[0], 0, k[1]): df for k, df in gens.items()})
    order = {m: i for i, m in enumerate(["says_no", *QUALITY])}
    out = pd.concat([no, quality], ignore_index=True)
    out["_rank"] = [(list(dict.fromkeys(out["row"])).index(r), order[m]) for r, m in zip(out["row"], out["metric"])]
    return out.sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)


def correction_verdict(item) -> str:
    """What a shown answer is, in words: 'said Yes (accepts the contrast)', 'exact correction', 'recovers the
    change, not exact' or 'wrong correction'."""
    if not item["says_no"]:
        return "said Yes (accepts the contrast caption)"
    if item["exact"] == 1:
        return "exact correction"
    return "recovers the change, not exact" if item["recovered"] == 1 else "wrong correction"


def quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """A reading grid: one line per (family, row), one column per measure, cells 'value [low, high]' in %."""
    from .tables import format_cell

    cells = quality.assign(model=[row_label(r, f) for r, f in zip(quality["row"], quality.get("family", [None] * len(quality)))],
                           cell=[format_cell(v, lo, hi) if np.isfinite(v) else "(no No answer)" for v, lo, hi in
                                 zip(quality["value"], quality["ci_low"], quality["ci_high"])])
    out = cells.pivot(index="model", columns="measure", values="cell")
    out = out.reindex(index=list(dict.fromkeys(cells["model"])), columns=list(dict.fromkeys(cells["measure"])))
    counts = cells.dropna(subset=["no_answers"]).groupby("model", sort=False)["no_answers"].max().astype(int)
    out.insert(1, "No answers (all runs)", counts.reindex(out.index).fillna(0).astype(int))
    return out.reset_index().rename_axis(columns=None)


def quality_reading(quality: pd.DataFrame, rows: tuple[str, ...] = ("haca", "haca_mask")) -> str:
    """One sentence per row that writes corrections: how often it says No and what its corrections are worth against
    copying the contrast caption back."""
    parts = []
    keyed = quality.assign(family=quality["family"] if "family" in quality.columns else None)
    for (family, row), part in keyed.groupby(["family", "row"], sort=False, dropna=False):
        if row not in rows:
            continue
        v = dict(zip(part["metric"], part["value"]))
        name = row_label(row, None if pd.isna(family) else family)
        if not np.isfinite(v.get("exact", np.nan)):
            parts.append(f"{name} answers No to {100 * v['says_no']:.1f}% of the contrast captions and writes no "
                         "correction to read.")
            continue
        beats = "above" if v["overlap_true"] > v["overlap_copy"] else "not above"
        parts.append(f"{name} answers No to {100 * v['says_no']:.1f}% of the contrast captions; of those corrections "
                     f"{100 * v['exact']:.1f}% are exact and {100 * v['recovered']:.1f}% recover the changed words, "
                     f"and they share {100 * v['overlap_true']:.1f}% of the true caption's words, {beats} the "
                     f"{100 * v['overlap_copy']:.1f}% that copying the contrast caption back would share.")
    return " ".join(parts)
