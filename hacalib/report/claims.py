"""The paper's claims ("row A beats row B on test G"), each read against the pretrained row and the other claims.

- `run_differences`: the paired per-item differences A - B of every run (within a base model).
- `claim_check`: per claim, the difference with its 95% interval (base models, seeds, items), a verdict, the
  p-value of the same t distribution, and each row against the pretrained model (A - pretrained, B - pretrained,
  same intervals) with a sentence that names which row moved; then `holm` over every claim of the table.
- `holm`: the Holm-adjusted verdict of a set of claims (family-wise 95%), beside the raw one.

"HACA above entail-only" says nothing about HACA when it holds because entail-only fell below the pretrained model;
the decomposition says so in words, from the same numbers.

May import: numpy, pandas, `hacalib.config`, `hacalib.metrics`, `.tables`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import FAMILY_LABELS
from ..metrics import nested_interval
from ..metrics.multiplicity import holm_adjust
from .tables import ROW_LABELS, by_family, family_collapsed, run_key, select_group, usable_runs, with_family

NOT_TESTABLE = "not testable in this world"
NO_RUN = "n/a (collapsed or missing)"
KINDS = ("greater", "not_lower")


def run_differences(per_item: dict[tuple, pd.DataFrame], a: str, b: str, group: str, group_value,
                    metric: str, collapsed: set[tuple] = frozenset()) -> dict[tuple[int, int], np.ndarray]:
    """(base, seed) -> per-item differences A - B of one group's items.

    Runs are paired within a base model: the same fine-tuning seed shares the data order across objectives; a row
    with one run per base model (the pretrained model) is subtracted from every run of that base model. Only base
    models (and seeds) that both rows have usable runs for enter.
    """
    ra, rb = usable_runs(per_item, a, collapsed), usable_runs(per_item, b, collapsed)

    def values(df):
        return select_group(df, group, group_value)[metric].to_numpy(dtype=float)

    out = {}
    for base in sorted({k[0] for k in ra} & {k[0] for k in rb}):
        sa = {s: df for (bb, s), df in ra.items() if bb == base}
        sb = {s: df for (bb, s), df in rb.items() if bb == base}
        if len(sb) == 1 and len(sa) >= 1:  # B once per base model (pretrained): subtracted from every run of A
            (other,) = sb.values()
            out.update({(base, s): values(df) - values(other) for s, df in sa.items()})
        elif len(sa) == 1:  # A once per base model
            (one,) = sa.values()
            out.update({(base, s): values(one) - values(df) for s, df in sb.items()})
        else:  # both rows fine-tuned: paired by seed
            out.update({(base, s): values(sa[s]) - values(sb[s]) for s in sorted(set(sa) & set(sb))})
    return out


def _verdict(kind: str, low: float, high: float) -> str:
    if not np.isfinite(low):
        return "inconclusive (no interval)"
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "inconclusive"  # for "not_lower" too: an interval that holds 0 also holds the losses above its low end


def _position(low: float, high: float) -> str:
    """Where a row stands against the pretrained model, from the interval of its difference."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "unknown"
    return "above" if low > 0 else "below" if high < 0 else "level"


def _against_pretrained(per_item, row, group, g, metric, collapsed, scale) -> tuple[float, float, float]:
    """(difference, low, high) of row - pretrained, in points; NaN for the pretrained row itself or without one."""
    if row == "pretrained" or not any(run_key(k)[0] == "pretrained" for k in per_item):
        return np.nan, np.nan, np.nan
    diffs = run_differences(per_item, row, "pretrained", group, g, metric, collapsed)
    if not diffs:
        return np.nan, np.nan, np.nan
    ci = nested_interval(diffs)
    return ci.value * scale, ci.low * scale, ci.high * scale


def movement_reading(a: str, b: str, verdict: str, a_vs: tuple[float, float, float],
                     b_vs: tuple[float, float, float]) -> str:
    """Which row moved: 'HACA above entail-only because entail-only fell below the pretrained model (-4.0
    [-6.5, -1.5]); HACA is not distinguishable from the pretrained model (-0.9 [-3.1, 1.3])'. Empty when neither row has a
    difference from the pretrained model, or one of them is the pretrained model (the claim itself says it all)."""
    la, lb = ROW_LABELS.get(a, a), ROW_LABELS.get(b, b)
    sides = [(label, vs, _position(vs[1], vs[2])) for label, vs in ((la, a_vs), (lb, b_vs)) if np.isfinite(vs[0])]
    if not sides or "pretrained" in (a, b):  # a claim against the pretrained row is already its own decomposition
        return ""
    words = {"above": "above the pretrained model", "below": "below the pretrained model",
             "level": "not distinguishable from the pretrained model", "unknown": "not comparable with it"}
    where = "; ".join(f"{label} is {words[pos]} ({vs[0]:+.1f} [{vs[1]:.1f}, {vs[2]:.1f}])" for label, vs, pos in sides)
    if verdict not in ("supported", "contradicted") or len(sides) < 2:
        return where
    (_, _, pa), (_, _, pb) = sides
    winner, loser = (la, lb) if verdict == "supported" else (lb, la)
    p_win, p_lose = (pa, pb) if verdict == "supported" else (pb, pa)
    reasons = ([f"{winner} rose above the pretrained model"] if p_win == "above" else []) + \
        ([f"{loser} fell below it"] if p_lose == "below" else [])
    why = " and ".join(reasons) if reasons else "of differences each too small to tell from the pretrained model"
    tail = "" if p_win == "above" else f"; {winner} is not above the pretrained model"
    return f"{winner} above {loser} because {why}{tail}. {where}"


def _check(per_item, group, metric, claims, collapsed, scale, unread) -> list[dict]:
    lines = []
    for claim in claims:
        label, a, b, g = claim[:4]
        kind = claim[4] if len(claim) > 4 else "greater"
        if kind not in KINDS:
            raise ValueError(f"claim {label!r}: kind must be 'greater' or 'not_lower', got {kind!r}")
        diffs = run_differences(per_item, a, b, group, g, metric, collapsed)
        line = {"claim": label, "kind": kind, "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "p_value": np.nan, "bases": 0, "runs": 0, "bases_agreeing": "", "ci": "", "verdict": NO_RUN}
        a_vs = b_vs = (np.nan, np.nan, np.nan)
        if diffs:
            ci = nested_interval(diffs)
            per_base: dict[int, list[float]] = {}
            for (base, _), d in diffs.items():
                per_base.setdefault(base, []).append(d.mean())
            positive = sum(np.mean(v) > 0 for v in per_base.values())
            line.update(difference=ci.value * scale, ci_low=ci.low * scale, ci_high=ci.high * scale,
                        p_value=ci.p_value, bases=len(per_base), runs=len(diffs),
                        bases_agreeing=f"{positive} of {len(per_base)}", ci=ci.method,
                        verdict=_verdict(kind, ci.low, ci.high))
            a_vs = _against_pretrained(per_item, a, group, g, metric, collapsed, scale)
            b_vs = _against_pretrained(per_item, b, group, g, metric, collapsed, scale)
        if g in unread:  # the base models do not see what the test asks: no verdict, whatever the difference
            line["verdict"] = NOT_TESTABLE
        line.update({"a_minus_pretrained": a_vs[0], "a_low": a_vs[1], "a_high": a_vs[2],
                     "b_minus_pretrained": b_vs[0], "b_low": b_vs[1], "b_high": b_vs[2],
                     "moved": movement_reading(a, b, line["verdict"], a_vs, b_vs) if diffs else "",
                     "perception": unread.get(g, "")})
        lines.append(line)
    return lines


def holm(claims: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """The claims with `holm_p` and `holm_verdict`: Holm's adjustment over every claim that was read (a verdict other
    than not testable or n/a), so the set's verdicts hold together at family-wise 1 - alpha. Claims not read keep
    their verdict there."""
    read = ~claims["verdict"].isin([NOT_TESTABLE, NO_RUN]) & np.isfinite(claims["p_value"].to_numpy(float))
    adjusted = holm_adjust(np.where(read, claims["p_value"].to_numpy(float), np.nan))
    verdicts = []
    for c, p, r in zip(claims.itertuples(index=False), adjusted, read):
        if not r:
            verdicts.append(c.verdict)
        elif p < alpha:
            verdicts.append("supported" if c.difference > 0 else "contradicted")
        else:
            verdicts.append("inconclusive")
    return claims.assign(holm_p=adjusted, holm_verdict=verdicts)


def claim_check(per_item: dict[tuple, pd.DataFrame], group: str, metric: str,
                claims: Sequence[tuple], *, collapsed: set[tuple] = frozenset(), scale: float = 100.0,
                untestable: Mapping | None = None) -> pd.DataFrame:
    """Test claims "row A beats row B on group G" (or "A is not below B"): the difference A - B with its 95% interval.

    Each claim is (label, A, B, G) or (label, A, B, G, kind) with kind "greater" (the default: A beats B) or
    "not_lower" (A keeps B's level, e.g. HACA keeps the pretrained model's QA). The interval is
    `hacalib.metrics.nested_interval` of the paired per-item differences (`run_differences`), so it covers base models,
    fine-tuning seeds and items. Verdicts, "greater": 'supported' when the whole interval is above 0, 'contradicted'
    when it is below 0, 'inconclusive' otherwise; "not_lower": 'contradicted' when the interval is below 0,
    'supported' when above, 'inconclusive' when it holds 0 (a loss down to its low end is not ruled out: "keeps"
    needs a margin the paper does not give, so no verdict says "consistent"); 'n/a' when a row has no usable run.
    `bases_agreeing` says in how many base models the mean difference is positive.

    Each row is also read against the pretrained model (columns a_minus_pretrained, a_low, a_high and the same for
    b, NaN for the pretrained row itself) and `moved` says in words which row moved. `holm_verdict` is the verdict
    after Holm's adjustment over every claim of the returned table (`holm`).

    Runs keyed by family: each claim once per family, its label prefixed with the family's name, a `family` column
    first. `untestable`: family (None without families) -> {group value: why} for the tests the base models do not
    perceive (`hacalib.report.perception.untestable`); a claim on one keeps its difference and interval but its
    verdict is `NOT_TESTABLE`, and column `perception` says why.
    """
    families = by_family(per_item)
    frames = {}
    for family, runs in families.items():
        labelled = claims if family is None else [(f"{FAMILY_LABELS.get(family, family)}: {c[0]}", *c[1:])
                                                  for c in claims]
        unread = (untestable or {}).get(family, {})
        frames[family] = pd.DataFrame(_check(runs, group, metric, labelled, family_collapsed(collapsed, family),
                                             scale, unread))
    return holm(with_family(frames))


def multiplicity_note(claims: pd.DataFrame) -> str:
    """How many claims were read and what Holm's adjustment changed, in one sentence."""
    read = claims[~claims["verdict"].isin([NOT_TESTABLE, NO_RUN])]
    if read.empty:
        return "No claim was read, so there is nothing to adjust for multiplicity."
    changed = int((read["verdict"] != read["holm_verdict"]).sum())
    decided = int(read["verdict"].isin(["supported", "contradicted"]).sum())
    return (f"{len(read)} claim{'s' if len(read) != 1 else ''} read at 95% each ({decided} supported or contradicted); "
            f"at that level about {0.05 * len(read):.1f} would be by chance alone if no difference were real. "
            + ("Holm's adjustment over them (column holm_verdict) changes no verdict."
               if not changed else f"Holm's adjustment over them (column holm_verdict) changes {changed} verdict"
               f"{'s' if changed != 1 else ''}: read those as not established."))


def side_by_side(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The same claims checked several ways (e.g. under each QA judge): one line per claim, one column per way,
    cells 'difference [low, high] verdict'."""
    columns = {}
    for name, claims in tables.items():
        columns[name] = [f"{d:+.1f} [{lo:.1f}, {hi:.1f}] {v}" if np.isfinite(d) else v
                         for d, lo, hi, v in zip(claims["difference"], claims["ci_low"], claims["ci_high"],
                                                 claims["verdict"])]
    first = next(iter(tables.values()))
    return pd.DataFrame({"claim": first["claim"].to_numpy(), **columns})
