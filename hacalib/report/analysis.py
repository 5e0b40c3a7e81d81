"""Failure analysis: where each model goes wrong, as small tables (the notebook shows frames for the cases), and
whether its captioning sees a difference that its yes/no answer misses (`readout_per_item`).

May import: numpy, pandas, its own package's modules, `hacalib.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import classic_vle
from .tables import ROWS, row_label, run_key


def _split(key: tuple) -> tuple[str | None, tuple]:
    """(family, (row, base, seed)) of a run key with or without its family first."""
    return (key[0], key[1:]) if len(key) == 4 else (None, key)


def _order(keys) -> list:
    """Run keys in table order: family (as first seen), row (`ROWS`), base, seed."""
    keys = list(keys)
    families = list(dict.fromkeys(_split(k)[0] for k in keys))

    def position(key):
        family, rest = _split(key)
        row, base, seed = run_key(rest)
        return families.index(family), ROWS.index(row) if row in ROWS else len(ROWS), base, seed

    return sorted(keys, key=position)


def _label(key) -> str:
    family, rest = _split(key)
    row, base, seed = run_key(rest)
    name = row_label(row, family)  # the tables' row names, so a reader meets one name per model
    return f"{name} (base {base})" if row == "pretrained" else f"{name} (base {base}, seed {seed})"


def failure_counts(velociti: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Share of VELOCITI items each run gets wrong (P(yes|neg) >= P(yes|pos)), one column per test."""
    lines = {}
    for key in _order(velociti):
        df = velociti[key]
        wrong = (df["p_neg"] >= df["p_pos"]).groupby(df["test"], sort=False).mean()
        lines[_label(key)] = wrong
    return pd.DataFrame(lines).T.reset_index(names="run")


def confirmed_hallucinations(pairs: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Share of held-out contrast captions each run confirms (P(yes) > 0.5), per misalignment type and overall."""
    lines = {}
    for key in _order(pairs):
        df = pairs[key]
        confirmed = (df["p_false"] > 0.5).groupby(df["misalignment"], sort=False).mean()
        confirmed["all"] = float((df["p_false"] > 0.5).mean())
        lines[_label(key)] = confirmed
    return pd.DataFrame(lines).T.reset_index(names="run")


FAILURES = {"confirms": "confirms the contrast caption (P(yes) > 0.5)",
            "prefers": "prefers the contrast caption (P(yes) at least as high as for the true one, at most 0.5)"}


def failure_examples(pairs: pd.DataFrame, answers: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """Up to `n` held-out items (one per misalignment type first) where the run confirms the contrast caption
    (P(yes) > 0.5) or prefers it to the true one, with the run's generated answer; the most confident mistakes
    first. Column `failure` says which of the two (`FAILURES`): a preferred caption at P(yes) 0.34 is a ranking
    error, not a confirmation."""
    merged = pairs.merge(answers[["video", "neg_caption", "answer", "correction", "overlap_true"]],
                         on=["video", "neg_caption"], how="left")
    bad = merged[(merged["p_false"] >= merged["p_true"]) | (merged["p_false"] > 0.5)]
    bad = bad.assign(margin=bad["p_false"] - bad["p_true"],
                     failure=np.where(bad["p_false"] > 0.5, "confirms", "prefers"))
    bad = bad.sort_values("margin", ascending=False)
    first = bad.drop_duplicates("misalignment")
    rest = bad.drop(first.index)
    return pd.concat([first, rest]).head(n).reset_index(drop=True)


READOUTS = {
    "p_yes": "P(yes)",
    "loglik": "log p(caption | video)",
    "loglik_other_video": "log p(caption | other video)",
}


def readout_per_item(pairs: pd.DataFrame, logliks: pd.DataFrame) -> pd.DataFrame:
    """Per held-out VideoCon item of one run, whether the true caption beats the contrast caption by each readout
    (`READOUTS`): P(yes) (`scoring.evaluate.videocon_pairs`, the paper's alignment score), log p(caption | video) and, as a
    control, log p(caption | another video) (`scoring.evaluate.videocon_loglik`). Ties count as wrong, as in `classic_vle`.

    Where the model's captioning prefers the true caption and its P(yes) does not, it has seen the difference but
    its yes/no answer does not use it; where the other video's log-likelihood prefers it as well, the preference
    comes from the text alone.
    """
    keys = ["video", "neg_caption"]
    if len(pairs) != len(logliks) or not (pairs[keys].to_numpy() == logliks[keys].to_numpy()).all():
        raise ValueError("pairs and logliks must hold the same held-out items in the same order "
                         "(evaluate.videocon_pairs and evaluate.videocon_loglik with the same split and limit)")
    for col in ("ll_true", "ll_false", "ll_true_other", "ll_false_other"):
        bad = ~np.isfinite(logliks[col].to_numpy(dtype=float))
        if bad.any():
            raise ValueError(f"logliks[{col!r}] is not finite at item {int(np.flatnonzero(bad)[0])}")
    return pd.DataFrame({
        "misalignment": pairs["misalignment"].to_numpy(),
        "p_yes": classic_vle(pairs["p_true"], pairs["p_false"]),
        "loglik": (logliks["ll_true"] > logliks["ll_false"]).to_numpy(dtype=float),
        "loglik_other_video": (logliks["ll_true_other"] > logliks["ll_false_other"]).to_numpy(dtype=float),
    })


def readout_reading(readouts: pd.DataFrame, *, margin: float = 0.10, scale: float = 100.0) -> list[str]:
    """Per run (family, row): the misalignment types its captioning head perceives (log p(caption | video) prefers
    the true caption, its interval above 50%, and at least `margin` above the same readout on another video) and,
    of those, the ones its P(yes) does not use (P(yes)'s interval reaches 50%): the setting HACA is about."""
    wide = readouts.pivot_table(index=[c for c in ("family", "row", "misalignment") if c in readouts.columns],
                                columns="metric", values=["value", "ci_low"], aggfunc="first")
    lines = []
    keys = [c for c in ("family", "row") if c in readouts.columns]
    for key, part in readouts.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        family, row = (key if len(key) == 2 else (None, key[0]))
        seen, unused = [], []
        for t in dict.fromkeys(part["misalignment"]):
            if t == "all":
                continue
            at = (*key, t)
            ll, ctl = wide.loc[at, ("value", "loglik")], wide.loc[at, ("value", "loglik_other_video")]
            if wide.loc[at, ("ci_low", "loglik")] > 0.5 and ll - ctl >= margin:
                py, py_low = wide.loc[at, ("value", "p_yes")], wide.loc[at, ("ci_low", "p_yes")]
                seen.append(f"{t} ({ll * scale:.0f} vs {ctl * scale:.0f} on another video; P(yes) {py * scale:.0f})")
                if not py_low > 0.5:
                    unused.append(t)
        name = row_label(row, family)
        if not seen:
            lines.append(f"{name}: its captioning head prefers the true caption on no type beyond what the text alone "
                         "gives: nothing here for its yes/no answer to use.")
            continue
        lines.append(f"{name}: its captioning head perceives {', '.join(seen)}"
                     + (f"; its P(yes) does not use it on {', '.join(unused)} (interval reaches 50%)" if unused
                        else "; its P(yes) uses every one of them") + ".")
    return lines
