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

from .tables import FAMILY_LABELS, ROW_LABELS, ROWS, row_label

PAPER_NOTE = ("The paper's own tables are not reproduced here (they need its model and data); its claims are checked "
              "as PROTOCOL.md (\"The paper's claims\") lists them, on this preset's models and data.")


def _pct(x: float, scale: float = 100.0) -> str:
    return f"{x * scale:.1f}"


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def claim_lines(claims: pd.DataFrame, *, unit: str = "points") -> list[str]:
    """'HACA > entail on agent_bind: +1.2 points [-3.4, 5.6], positive in 2 of 3 base models: inconclusive. HACA is
    not distinguishable from the pretrained model (...)'. The Holm-adjusted verdict is named where it differs from the raw one; a
    claim on a test the base models do not perceive says so, with the readout (`claim_check`'s `perception`)."""
    lines = []
    for c in claims.itertuples(index=False):
        if not np.isfinite(c.difference):
            lines.append(f"**{c.claim}**: no usable run ({c.verdict}).")
            continue
        interval = f" [{c.ci_low:.1f}, {c.ci_high:.1f}]" if np.isfinite(c.ci_low) else " (no interval)"
        agree = f"; the difference is positive in {c.bases_agreeing} base models" if c.bases_agreeing else ""
        holm = getattr(c, "holm_verdict", c.verdict)
        holm = f" (after Holm's adjustment over the table's claims: {holm})" if holm != c.verdict else ""
        why = getattr(c, "perception", "")
        why = f" ({why})" if isinstance(why, str) and why else ""
        moved = getattr(c, "moved", "")
        moved = f" {moved.rstrip('.')}." if isinstance(moved, str) and moved and not why else ""
        unsure = (f"; a loss of up to {-c.ci_low:.1f} {unit} is not ruled out" if getattr(c, "kind", "") == "not_lower"
                  and c.verdict == "inconclusive" and np.isfinite(c.ci_low) and c.ci_low < 0 else "")
        lines.append(f"**{c.claim}**: {_signed(c.difference)} {unit}{interval}{agree}: **{c.verdict}**{unsure}{holm}{why}."
                     f"{moved}")
    return lines


def _label(row: str) -> str:
    return ROW_LABELS.get(row, row)


def _levels(summary: pd.DataFrame, chance, chance_metric: str | None, group: str):
    """level(record) for a summary line: a constant, one per group value, or (`chance_metric`) the same row's value
    of another metric of the summary (a chance level that depends on the row, e.g. StrictVLE's)."""
    if chance_metric is None:
        return lambda r: chance[getattr(r, group)] if isinstance(chance, Mapping) else chance
    ref = summary[summary["metric"] == chance_metric]
    keys = [c for c in ("family", "row", group) if c in ref.columns]
    table = {tuple(k): v for k, v in zip(ref[keys].itertuples(index=False, name=None), ref["value"])}
    return lambda r: table.get(tuple(getattr(r, k) for k in keys), float("nan"))


def chance_lines(summary: pd.DataFrame, group: str, metric: str, chance: float | Mapping[str, float] | None = None,
                 *, scale: float = 100.0, what: str = "chance", chance_metric: str | None = None) -> list[str]:
    """Per group value: the rows whose interval lies above, covers, or lies below the chance level.

    Args:
        summary: a `summarize_runs` table (row, <group>, metric, value, ci_low, ci_high).
        group: its grouping column; metric: which metric's lines to read.
        chance: the chance level, one for all groups or one per group value.
        what: the reference's name in the text ('chance', 'a random ranking', 'the majority answer').
        chance_metric: instead of `chance`, each row's own level: its value of this metric in the same summary
            (e.g. `strict_vle_chance`); the level then follows each row in the text.
    """
    sel = summary[summary["metric"] == metric]
    level_of = _levels(summary, chance, chance_metric, group)
    lines = []
    for g, part in sel.groupby(group, sort=False):
        above, at, below = [], [], []
        families = list(dict.fromkeys(getattr(r, "family", None) for r in part.itertuples(index=False)))
        order = sorted(part.itertuples(index=False),
                       key=lambda r: (families.index(getattr(r, "family", None)),
                                      ROWS.index(r.row) if r.row in ROWS else len(ROWS)))
        for r in order:
            if not np.isfinite(r.value):
                continue
            level = level_of(r)
            own = f" vs {_pct(level, scale)}" if chance_metric else ""
            cell = f"{row_label(r.row, getattr(r, 'family', None))} {_pct(r.value, scale)}{own}"
            if np.isfinite(r.ci_low) and r.ci_low > level:
                above.append(cell)
            elif np.isfinite(r.ci_high) and r.ci_high < level:
                below.append(cell)
            else:
                at.append(cell)
        head = (f"**{g}** (each row against its own {what})" if chance_metric
                else f"**{g}** ({what}: {_pct(level_of(next(part.itertuples(index=False))), scale)}%)")
        if not above and not below:
            lines.append(f"{head}: every row is within its interval of {what} ({', '.join(at)}): no model is "
                         "distinguishable from it on this test.")
            continue
        parts = [f"above {what}: {', '.join(above)}" if above else "",
                 f"within its interval of {what}: {', '.join(at)}" if at else "",
                 f"below {what}: {', '.join(below)}" if below else ""]
        lines.append(f"{head}: " + "; ".join(p for p in parts if p) + ".")
    return lines


def chance_takeaway(summary: pd.DataFrame, group: str, metric: str, chance: float | Mapping[str, float] | None = None,
                    *, what: str = "chance", noun: str = "tests", chance_metric: str | None = None) -> str:
    """'On 7 of 9 tests every row is within its interval of chance; some row is above it on agent_iden, control.'"""
    sel = summary[(summary["metric"] == metric) & np.isfinite(summary["value"].to_numpy(float))]
    level_of = _levels(summary, chance, chance_metric, group)
    above, below, groups = [], [], list(dict.fromkeys(sel[group]))
    for g in groups:
        rows = [r for r in sel.itertuples(index=False) if getattr(r, group) == g]
        if any(np.isfinite(r.ci_low) and r.ci_low > level_of(r) for r in rows):
            above.append(str(g))
        if any(np.isfinite(r.ci_high) and r.ci_high < level_of(r) for r in rows):
            below.append(str(g))
    at = [g for g in groups if str(g) not in above and str(g) not in below]
    text = (f"On {len(at)} of {len(groups)} {noun} every row is within its interval of {what}"
            if at else f"On every one of the {len(groups)} {noun} some row differs from {what}")
    text += f"; some row is above it on {', '.join(above)}" if above else ""
    text += f"; some row is below it on {', '.join(below)}" if below else ""
    return text + "."


def claims_takeaway(claims: pd.DataFrame) -> str:
    """'Of 10 claims checked here, 8 are not testable in this world (the base models do not perceive what they ask:
    notebook 02); of the 2 read, 1 is supported (VideoChat2: ...; HACA is not distinguishable from the pretrained model) and 1
    inconclusive; Holm's adjustment changes none.'"""
    from .claims import NO_RUN, NOT_TESTABLE

    n = len(claims)
    unread = int((claims["verdict"] == NOT_TESTABLE).sum())
    missing = int((claims["verdict"] == NO_RUN).sum())
    read = claims[~claims["verdict"].isin([NOT_TESTABLE, NO_RUN])]
    parts = [f"Of the {n} claim{'s' if n != 1 else ''} checked here"]
    if unread:
        parts.append(f", {unread} {'is' if unread == 1 else 'are'} not testable in this world (the base models do not "
                     "perceive what they ask: notebook 02's gate)")
    if missing:
        parts.append(f", {missing} have no usable run")
    if read.empty:
        return "".join(parts) + (": none is read." if unread or missing else ": none.")
    counts = read["verdict"].value_counts()
    verdicts = ", ".join(f"{v} {k}" for k, v in counts.items())
    if len(read) == n:
        parts = [f"All {n} claim{'s' if n != 1 else ''} checked here are read: {verdicts}"]
    else:
        parts.append(f"; of the {len(read)} read: {verdicts}")
    decided = read[read["verdict"].isin(["supported", "contradicted"])]
    for c in decided.itertuples(index=False):
        moved = getattr(c, "moved", "")
        moved = moved.split(". ")[0] if isinstance(moved, str) and moved else ""
        holm = getattr(c, "holm_verdict", c.verdict)
        parts.append(f". {c.claim} is {c.verdict} ({_signed(c.difference)} [{c.ci_low:.1f}, {c.ci_high:.1f}])"
                     + (f": {moved}" if moved else "")
                     + (f"; after Holm's adjustment it is {holm}" if holm != c.verdict else ""))
    changed = int((read["verdict"] != read.get("holm_verdict", read["verdict"])).sum())
    parts.append(f". Holm's adjustment over the table's claims changes {changed or 'no'} verdict"
                 f"{'s' if changed > 1 else ''}.")
    return "".join(parts).replace("..", ".")


def findings(title: str, measured: str, *, takeaway: Sequence[str] = (), claims: Sequence[str] = (),
             reference: Sequence[str] = (), reading: Sequence[str] = (), paper_note: bool = True) -> str:
    """The Findings section of a notebook as markdown: the takeaway first, then the details.

    Args:
        title: what the notebook is (e.g. 'VELOCITI, Table 1').
        measured: one sentence on what was measured and how the intervals were made.
        takeaway: two or three sentences on what the notebook found, built from its tables (`claims_takeaway`,
            `chance_takeaway`, ...); they open the section.
        claims: `claim_lines` output (the paper's claims on this notebook's tables).
        reference: `chance_lines` output or other comparisons with a chance level or base rate.
        reading: plain sentences on what the numbers mean.
    """
    out = [f"## Findings: {title}", ""]
    if takeaway:
        out += ["**In short.** " + " ".join(takeaway), ""]
    out += [measured]
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
    keys = ["family", "row"] if "family" in report.columns else ["row"]
    for key, part in report.groupby(keys, sort=False):
        family, row = key if len(keys) == 2 else (None, key[0] if isinstance(key, tuple) else key)
        parts.append(f"{row_label(row, family)} {part['max'].min():.2f}-{part['max'].max():.2f}")
    return ("The highest P(yes) any item reaches, per run (lowest-highest run): " + ", ".join(parts) +
            ". StrictVLE counts a pair only when P(yes) is above 0.5 for the true and below 0.5 for the false "
            "description, so a row whose P(yes) stays below 0.5 scores near 0 there however well it ranks the pair.")


def curve_reading(curve: pd.DataFrame, x: str, *, group_value: str, scale: float = 100.0) -> str:
    """One sentence over a curve's points (e.g. the mask ratio): each value with its interval, and whether any
    two points' intervals are disjoint."""
    sel = curve[curve["test"] == group_value].sort_values(x)
    if not np.isfinite(sel["value"].to_numpy(dtype=float)).any():
        return (f"{group_value}: no point has a value: every run's P(yes) is constant (collapsed), so there is no "
                "curve to read.")
    sel = sel[np.isfinite(sel["value"].to_numpy(dtype=float))]
    cells = [f"{v * scale:.0f}%: {_pct(m, scale)} [{_pct(lo, scale)}, {_pct(hi, scale)}]"
             for v, m, lo, hi in zip(sel[x], sel["value"], sel["ci_low"], sel["ci_high"])]
    disjoint = any(a_hi < b_lo or b_hi < a_lo for (a_lo, a_hi) in zip(sel["ci_low"], sel["ci_high"])
                   for (b_lo, b_hi) in zip(sel["ci_low"], sel["ci_high"]))
    best = sel.loc[sel["value"].idxmax()]
    verdict = (f"the highest point is {best[x] * scale:.0f}%, and some intervals do not overlap"
               if disjoint else "every interval overlaps every other: no ratio is distinguishable from another here")
    return f"{group_value}: " + "; ".join(cells) + f"; {verdict}."


def curve_takeaway(curve: pd.DataFrame, x: str, *, group_value: str, what: str = "mask ratio") -> str:
    """Whether any two points of any family's curve have disjoint intervals, in one sentence."""
    families = curve.groupby("family", sort=False) if "family" in curve.columns else [(None, curve)]
    differ = [FAMILY_LABELS.get(f, f) or "this run" for f, part in families
              if "some intervals do not overlap" in curve_reading(part, x, group_value=group_value)]
    if not differ:
        return (f"No {what} is distinguishable from another on the {group_value} for any model family: every "
                "point's interval overlaps every other's.")
    return f"Some {what}s differ on the {group_value} for {', '.join(differ)} (disjoint intervals; see below)."


def failure_reading(counts: pd.DataFrame, confirmed: pd.DataFrame, *, clear: float = 0.40) -> list[str]:
    """Per analysed run: its error share per VELOCITI test against chance (a scorer that ignores the video gets half
    of the pairs wrong), the tests it gets clearly right (under `clear` wrong), and how many held-out hallucinated
    captions it confirms (P(yes) > 0.5); from `failure_counts` and `confirmed_hallucinations`."""
    lines = []
    tests = [c for c in counts.columns if c != "run"]
    for r in counts.itertuples(index=False):
        shares = {t: getattr(r, t) for t in tests}
        good = [f"{t} ({_pct(v)}%)" for t, v in shares.items() if v < clear]
        lines.append(f"{r.run}: wrong on {_pct(min(shares.values()))}-{_pct(max(shares.values()))}% of the pairs per "
                     "test (chance: 50%); "
                     + (f"clearly better than chance on {', '.join(good)}." if good else
                        "no test clearly better than chance."))
    for r in confirmed.itertuples(index=False):
        lines.append(f"{r.run} confirms {_pct(getattr(r, 'all'))}% of the held-out hallucinated captions "
                     "(P(yes) > 0.5).")
    return lines


def dataset_line(name: str, rows: Sequence) -> str:
    """'Real VideoCon sample: 2,400 rows of 2,392 videos (1 exact repeat); types flip 52.6%, action 47.4%;
    captions 11.2 words on average (contrast 12.0).' Rows are `hacalib.data` VideoCon rows."""
    distinct = len({(r.videopath, r.caption, r.neg_caption, r.misalignment) for r in rows})
    repeats = len(rows) - distinct
    types = pd.Series([r.misalignment for r in rows]).value_counts(normalize=True)
    words = np.mean([len(r.caption.split()) for r in rows]) if rows else float("nan")
    neg_words = np.mean([len(r.neg_caption.split()) for r in rows]) if rows else float("nan")
    return (f"{name}: {len(rows):,} rows of {len({r.videopath for r in rows}):,} videos"
            + (f" ({repeats} exact repeat{'s' if repeats != 1 else ''}, kept as training sees them)" if repeats else "")
            + "; misalignment types " + ", ".join(f"{t} {100 * s:.1f}%" for t, s in types.items())
            + f"; captions {words:.1f} words on average (contrast captions {neg_words:.1f}).")


def examples_line(counts: pd.DataFrame) -> str:
    """Training examples per objective and the Yes base rate of the entailment examples, from a table with
    columns objective, pos, neg and optionally mask (`training.examples.count_by_kind` per objective)."""
    parts, rates = [], []
    for r in counts.to_dict("records"):
        kinds = {k: int(r.get(k, 0) or 0) for k in ("pos", "neg", "mask")}
        extra = f" + {kinds['mask']:,} masking" if kinds["mask"] else ""
        parts.append(f"{r['objective']} {kinds['pos']:,} aligned + {kinds['neg']:,} contrast{extra}")
        rates.append(kinds["pos"] / max(kinds["pos"] + kinds["neg"], 1))
    rate = ", ".join(sorted({f"{100 * x:.1f}%" for x in rates}))
    return ("Training examples per objective: " + "; ".join(parts) + f". Answering Yes to every entailment "
            f"example would be right on {rate} of them: the aligned and contrast examples are balanced, so a model "
            "cannot learn the task from the answer's base rate.")


def data_takeaway(counts: pd.DataFrame, rows: Sequence, masked: Sequence, ratio: float) -> str:
    """Two sentences: what every objective trains on (from `examples_line`'s table) and how the training split's
    misalignment types and the masking task are spread."""
    first = counts.to_dict("records")[0]
    pos, neg = int(first.get("pos", 0) or 0), int(first.get("neg", 0) or 0)
    same = all(int(r.get("pos", 0) or 0) == pos and int(r.get("neg", 0) or 0) == neg for r in counts.to_dict("records"))
    types = pd.Series([r.misalignment for r in rows]).value_counts(normalize=True)
    hidden = sum(len(m.masked_words) for m in masked) / max(sum(m.n_content for m in masked), 1)
    return ((f"Every objective trains on the same {pos:,} aligned and {neg:,} contrast examples" if same else
             "The objectives train on different aligned and contrast examples")
            + f" (balanced: answering Yes to all is right on {100 * pos / max(pos + neg, 1):.0f}%); the training split "
            f"has {len(types)} misalignment types, {100 * types.min():.1f}-{100 * types.max():.1f}% each, and masking "
            f"at {ratio:.2f} hides {100 * hidden:.1f}% of their content words.")


def masking_line(masked: Sequence, ratio: float) -> str:
    """How much of the content the masking task actually hides (`training.masking.mask_captions` results)."""
    hidden = np.array([len(m.masked_words) for m in masked], dtype=float)
    content = np.array([m.n_content for m in masked], dtype=float)
    share = hidden.sum() / max(content.sum(), 1)
    return (f"masking at ratio {ratio:.2f} hid {100 * share:.1f}% of the content words of {len(masked):,} captions "
            f"({hidden.mean():.1f} words per caption; at least one per caption, so short captions lose a larger "
            "share than the ratio).")


def ties_reading(per_query: Mapping[tuple, pd.DataFrame]) -> str:
    """Whether mAP with ties grouped and VideoCon's convention differ on these runs (per-query frames with columns
    map and map_videocon): they differ only where scores tie, and float32 P(yes) rarely does."""
    gaps = [float(np.max(np.abs(df["map"].to_numpy(float) - df["map_videocon"].to_numpy(float))))
            for df in per_query.values() if len(df)]
    worst = 100 * max(gaps) if gaps else float("nan")
    if worst == 0:
        return (f"mAP (ties grouped) and VideoCon's convention are identical on every query of all {len(gaps)} runs: "
                "their float32 P(yes) has no ties that mix a positive and a negative, and the two conventions differ "
                "only at such ties.")
    return (f"mAP (ties grouped) and VideoCon's convention differ by up to {worst:.2f} points on a query: some "
            "scores tie, and the conventions break ties differently (see the tie table).")


def row_values(summary: pd.DataFrame, metric: str, scale: float = 100.0) -> str:
    """'Video-LLaVA: Pretrained 56.4, Entail-only FT 53.2, HACA 43.7; VideoChat2: ...' for one metric of a summary
    over one group (e.g. "all")."""
    sel = summary[summary["metric"] == metric]
    groups = sel.groupby("family", sort=False) if "family" in sel.columns else [(None, sel)]
    parts = []
    for family, part in groups:
        cells = ", ".join(f"{_label(r.row)} {_pct(r.value, scale)}" for r in part.itertuples(index=False))
        parts.append(f"{FAMILY_LABELS.get(family, family)}: {cells}" if family else cells)
    return "; ".join(parts)


def judges_reading(overall: pd.DataFrame, scale: float = 100.0, *, threshold: float = 5.0) -> str:
    """How the three QA judges part ways (a `summarize_runs` table over group "all" with metrics first_answer, exact
    and contains): 'contains' minus the first answer is the credit for a gold word found after a different first
    answer; the first answer minus exact match is the right answers followed by more words."""
    if "family" in overall.columns:  # one sentence per model family
        return " ".join(f"{FAMILY_LABELS.get(f, f)}: " + judges_reading(part.drop(columns="family"), scale,
                                                                      threshold=threshold)
                        for f, part in overall.groupby("family", sort=False))
    wide = overall.pivot(index="row", columns="metric", values="value")
    order = [r for r in ROWS if r in wide.index] + [r for r in wide.index if r not in ROWS]
    late = {r: (wide.loc[r, "contains"] - wide.loc[r, "first_answer"]) * scale for r in order}
    runon = {r: (wide.loc[r, "first_answer"] - wide.loc[r, "exact"]) * scale for r in order}
    talkers = [_label(r) for r in order if np.isfinite(late[r]) and late[r] >= threshold]
    text = ("'contains' minus the first answer (a gold word found after a different first answer): "
            + ", ".join(f"{_label(r)} {late[r]:.1f}" for r in order)
            + "; the first answer minus exact match (a right answer followed by more words): "
            + ", ".join(f"{_label(r)} {runon[r]:.1f}" for r in order) + " points.")
    if talkers:
        text += (f" {', '.join(talkers)} run on after a wrong first answer often enough that 'contains' would credit "
                 "them with answers they did not give: that is why the first answer is the headline judge.")
    return text
