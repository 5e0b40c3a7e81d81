"""Findings: what a notebook found, in sentences whose numbers come from its own tables.

A table alone is not a finding. Each notebook ends with a "Findings" section built here from the tables it just
wrote, so the text stays true on another preset, seed or machine: what was measured, each of the paper's claims
with our estimate, its 95% interval and verdict, the chance level or base rate beside the numbers, and a plain
reading where the numbers call for one ("every row is within its interval of chance: no model learned this test").

- `claim_lines`: one line per claim of a `claim_check` table.
- `chance_lines`: per group of a summary table, which rows are above, at or below the chance level.
- `findings`: the section (markdown) from a title, what was measured and those lines.

May import: numpy, pandas, `.tables`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import ROW_LABELS, ROWS

PAPER_NOTE = ("The paper's own tables are not reproduced here (they need its model and data); its claims are checked "
              "as DESIGN.md section 2 states them, on this preset's models and data.")


def _pct(x: float, scale: float = 100.0) -> str:
    return f"{x * scale:.1f}"


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def claim_lines(claims: pd.DataFrame, *, unit: str = "points") -> list[str]:
    """'HACA > entail on agent_bind: +1.2 points [-3.4, 5.6], 2 of 3 base models agree: inconclusive.'"""
    lines = []
    for c in claims.itertuples(index=False):
        if not np.isfinite(c.difference):
            lines.append(f"**{c.claim}**: no usable run ({c.verdict}).")
            continue
        interval = f" [{c.ci_low:.1f}, {c.ci_high:.1f}]" if np.isfinite(c.ci_low) else " (no interval)"
        agree = f"; the difference is positive in {c.bases_agreeing} base models" if c.bases_agreeing else ""
        lines.append(f"**{c.claim}**: {_signed(c.difference)} {unit}{interval}{agree}: **{c.verdict}**.")
    return lines


def _label(row: str) -> str:
    return ROW_LABELS.get(row, row)


def chance_lines(summary: pd.DataFrame, group: str, metric: str, chance: float | Mapping[str, float], *,
                 scale: float = 100.0, what: str = "chance") -> list[str]:
    """Per group value: the rows whose interval lies above, covers, or lies below the chance level.

    Args:
        summary: a `summarize_runs` table (row, <group>, metric, value, ci_low, ci_high).
        group: its grouping column; metric: which metric's lines to read.
        chance: the chance level, one for all groups or one per group value.
        what: the reference's name in the text ('chance', 'a random ranking', 'the majority answer').
    """
    sel = summary[summary["metric"] == metric]
    lines = []
    for g, part in sel.groupby(group, sort=False):
        level = chance[g] if isinstance(chance, Mapping) else chance
        above, at, below = [], [], []
        order = sorted(part.itertuples(index=False), key=lambda r: ROWS.index(r.row) if r.row in ROWS else len(ROWS))
        for r in order:
            if not np.isfinite(r.value):
                continue
            cell = f"{_label(r.row)} {_pct(r.value, scale)}"
            if np.isfinite(r.ci_low) and r.ci_low > level:
                above.append(cell)
            elif np.isfinite(r.ci_high) and r.ci_high < level:
                below.append(cell)
            else:
                at.append(cell)
        head = f"**{g}** ({what}: {_pct(level, scale)}%)"
        if not above and not below:
            lines.append(f"{head}: every row is within its interval of {what} ({', '.join(at)}): no model is "
                         "distinguishable from it on this test.")
            continue
        parts = [f"above {what}: {', '.join(above)}" if above else "",
                 f"within its interval of {what}: {', '.join(at)}" if at else "",
                 f"below {what}: {', '.join(below)}" if below else ""]
        lines.append(f"{head}: " + "; ".join(p for p in parts if p) + ".")
    return lines


def findings(title: str, measured: str, *, claims: Sequence[str] = (), reference: Sequence[str] = (),
             reading: Sequence[str] = (), paper_note: bool = True) -> str:
    """The Findings section of a notebook as markdown.

    Args:
        title: what the notebook is (e.g. 'VELOCITI, Table 1').
        measured: one sentence on what was measured and how the intervals were made.
        claims: `claim_lines` output (the paper's claims on this notebook's tables).
        reference: `chance_lines` output or other comparisons with a chance level or base rate.
        reading: plain sentences on what the numbers mean.
    """
    out = [f"## Findings: {title}", "", measured]
    if claims:
        out += ["", "**The paper's claims.** " + (PAPER_NOTE if paper_note else ""), ""]
        out += [f"- {c}" for c in claims]
    if reference:
        out += ["", "**Against chance and base rates.**", ""] + [f"- {r}" for r in reference]
    if reading:
        out += ["", "**Reading.**", ""] + [f"- {r}" for r in reading]
    return "\n".join(out) + "\n"


def design_sentence(summary: pd.DataFrame) -> str:
    """'3 base models x 2 fine-tuning seeds, 95% intervals over base models, seeds and items' from a summary table."""
    ft = summary[summary["row"] != "pretrained"]
    ref = ft if len(ft) else summary
    bases, runs = int(ref["bases"].max()), int(ref["runs"].max())
    per_base = max(runs // max(bases, 1), 1)
    return (f"{bases} base model{'s' if bases != 1 else ''} x {per_base} fine-tuning seed{'s' if per_base != 1 else ''} "
            "per objective (the pretrained row: each base model once); every interval is a 95% interval over base "
            "models, fine-tuning seeds and items (PROTOCOL.md, \"Intervals\").")


def pyes_reading(report: pd.DataFrame) -> str:
    """How high P(yes) goes per row (a `collapse_report`): StrictVLE and 'confirmed' counts need it above 0.5."""
    parts = []
    for row, part in report.groupby("row", sort=False):
        parts.append(f"{_label(row)} {part['max'].min():.2f}-{part['max'].max():.2f}")
    return ("The highest P(yes) any item reaches, per run (lowest-highest run): " + ", ".join(parts) +
            ". StrictVLE counts a pair only when P(yes) is above 0.5 for the true and below 0.5 for the false "
            "description, so a row whose P(yes) stays below 0.5 scores near 0 there however well it ranks the pair.")


def curve_reading(curve: pd.DataFrame, x: str, *, group_value: str, scale: float = 100.0) -> str:
    """One sentence over a curve's points (e.g. the mask ratio): each value with its interval, and whether any
    two points' intervals are disjoint."""
    sel = curve[curve["test"] == group_value].sort_values(x)
    cells = [f"{v * scale:.0f}%: {_pct(m, scale)} [{_pct(lo, scale)}, {_pct(hi, scale)}]"
             for v, m, lo, hi in zip(sel[x], sel["value"], sel["ci_low"], sel["ci_high"])]
    disjoint = any(a_hi < b_lo or b_hi < a_lo for (a_lo, a_hi) in zip(sel["ci_low"], sel["ci_high"])
                   for (b_lo, b_hi) in zip(sel["ci_low"], sel["ci_high"]))
    best = sel.loc[sel["value"].idxmax()]
    verdict = (f"the highest point is {best[x] * scale:.0f}%, and some intervals do not overlap"
               if disjoint else "every interval overlaps every other: no ratio is distinguishable from another here")
    return f"{group_value}: " + "; ".join(cells) + f"; {verdict}."


def failure_reading(counts: pd.DataFrame, confirmed: pd.DataFrame) -> list[str]:
    """Where each analysed run goes wrong most (VELOCITI test with the largest error share) and how many held-out
    hallucinated captions it confirms (P(yes) > 0.5), from `failure_counts` and `confirmed_hallucinations`."""
    lines = []
    tests = [c for c in counts.columns if c != "run"]
    for r in counts.itertuples(index=False):
        shares = {t: getattr(r, t) for t in tests}
        worst = max(shares, key=shares.get)
        lines.append(f"{r.run}: most errors on {worst} ({_pct(shares[worst])}% of its pairs wrong).")
    for r in confirmed.itertuples(index=False):
        lines.append(f"{r.run} confirms {_pct(getattr(r, 'all'))}% of the held-out hallucinated captions "
                     "(P(yes) > 0.5).")
    return lines
