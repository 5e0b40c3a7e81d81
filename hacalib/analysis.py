"""Failure analysis: where each model goes wrong, as small tables (the notebook shows frames for the cases)."""

from __future__ import annotations

import pandas as pd

from .tables import ROWS


def _order(keys) -> list:
    return sorted(keys, key=lambda k: (ROWS.index(k[0]) if k[0] in ROWS else len(ROWS), k[1]))


def failure_counts(velociti: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Share of VELOCITI items each run gets wrong (P(yes|neg) >= P(yes|pos)), one column per test."""
    lines = {}
    for key in _order(velociti):
        df = velociti[key]
        wrong = (df["p_neg"] >= df["p_pos"]).groupby(df["test"], sort=False).mean()
        lines[f"{key[0]} (seed {key[1]})"] = wrong
    return pd.DataFrame(lines).T.reset_index(names="run")


def confirmed_hallucinations(pairs: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Share of held-out contrast captions each run confirms (P(yes) > 0.5), per misalignment type and overall."""
    lines = {}
    for key in _order(pairs):
        df = pairs[key]
        confirmed = (df["p_false"] > 0.5).groupby(df["misalignment"], sort=False).mean()
        confirmed["all"] = float((df["p_false"] > 0.5).mean())
        lines[f"{key[0]} (seed {key[1]})"] = confirmed
    return pd.DataFrame(lines).T.reset_index(names="run")


def failure_examples(pairs: pd.DataFrame, answers: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """Up to `n` held-out items (one per misalignment type first) where the run prefers or confirms the contrast
    caption, with the run's generated answer; the most confident mistakes first."""
    merged = pairs.merge(answers[["video", "neg_caption", "answer", "correction", "overlap_true"]],
                         on=["video", "neg_caption"], how="left")
    bad = merged[(merged["p_false"] >= merged["p_true"]) | (merged["p_false"] > 0.5)]
    bad = bad.assign(margin=bad["p_false"] - bad["p_true"]).sort_values("margin", ascending=False)
    first = bad.drop_duplicates("misalignment")
    rest = bad.drop(first.index)
    return pd.concat([first, rest]).head(n).reset_index(drop=True)
