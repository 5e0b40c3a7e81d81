"""The whole run on one page: what it can test, every claim of every notebook, and the main readings in sentences.

Notebook 00 (run last by `haca reproduce`) reads the tables the other notebooks wrote under figures/, never the
models: the perception report (`02_perception.csv`), the claim tables (`03_claims.csv`, `04_claims.csv`,
`05_claims.csv`) and Table 2 (`05_table2_qa.csv`).

- `read_tables`: those tables with their provenance, and a line on whether they all come from one run;
- `all_claims`: every claim in one table, Holm's adjustment redone over all of them (`holm_all`);
- `what_can_be_tested`, `claims_line`, `qa_line`: the readings.

May import: numpy, pandas, `.claims`, `.findings`, `.perception`, `.tables`, `.artifacts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import read_provenance
from .findings import claims_takeaway
from .perception import perception_takeaway
from .tables import FAMILY_LABELS, ROW_LABELS, ROWS

# what a claim table must hold for this page (`hacalib.report.claims.claim_check` writes them)
CLAIM_COLUMNS = ("claim", "kind", "difference", "ci_low", "ci_high", "p_value", "verdict", "a_minus_pretrained",
                 "b_minus_pretrained", "moved", "perception")
CLAIM_TABLES = {"03_claims": "VELOCITI (03)", "04_claims": "SSv2 retrieval (04)", "05_claims": "QA (05)"}


@dataclass
class Tables:
    perception: pd.DataFrame | None
    claims: dict[str, pd.DataFrame]
    qa: pd.DataFrame | None
    provenance: dict[str, dict]

    def consistency(self) -> str:
        """Whether every table comes from the same commit and settings (a table left from an earlier run would
        make this page mix two experiments)."""
        if not self.provenance:
            return "No table found: run the other notebooks first."
        commits = {str(p.get("git_commit")) for p in self.provenance.values()}
        configs = [p.get("config") or {} for p in self.provenance.values()]
        shared = set.intersection(*(set(c) for c in configs)) if configs else set()
        mixed = (["git_commit"] if len(commits) > 1 else []) + \
            sorted(k for k in shared if len({repr(c[k]) for c in configs}) > 1)
        names = ", ".join(sorted(self.provenance))
        if not mixed:
            return (f"All {len(self.provenance)} tables ({names}) come from one run: commit {commits.pop()}, the same "
                    "settings.")
        return (f"**The tables do not come from one run**: they differ in {', '.join(mixed)} ({names}). Re-run every "
                "notebook (`haca reproduce`) before reading this page.")


def _read(out_dir: Path, name: str, provenance: dict) -> pd.DataFrame | None:
    path = out_dir / f"{name}.csv"
    if not path.is_file():
        return None
    meta = out_dir / f"{name}.provenance.json"
    if meta.is_file():
        provenance[name] = read_provenance(meta)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def read_tables(out_dir: str | Path) -> Tables:
    """The tables this page reads from `out_dir` (a missing one is None or absent)."""
    out_dir, provenance = Path(out_dir), {}
    claims = {name: df for name in CLAIM_TABLES if (df := _read(out_dir, name, provenance)) is not None}
    return Tables(perception=_read(out_dir, "02_perception", provenance), claims=claims,
                  qa=_read(out_dir, "05_table2_qa", provenance), provenance=provenance)


def holm_all(claims: pd.DataFrame) -> pd.DataFrame:
    """`claims` with Holm's adjustment redone over all of them (columns holm_p, holm_verdict replaced)."""
    from .claims import holm

    return holm(claims.drop(columns=[c for c in ("holm_p", "holm_verdict") if c in claims.columns]))


def all_claims(tables: Tables) -> pd.DataFrame:
    """Every claim of every notebook, with the notebook's name and Holm's adjustment over all of them."""
    if not tables.claims:
        return pd.DataFrame()
    for name, df in tables.claims.items():
        missing = [c for c in CLAIM_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{name}.csv lacks column(s) {missing}: it was written by an older version of the "
                             f"notebook; re-run notebook {name[:2]} (haca reproduce --only {name[:2]}) first")
    frames = [df.assign(notebook=CLAIM_TABLES[name]) for name, df in tables.claims.items()]
    claims = pd.concat(frames, ignore_index=True)
    claims = claims.rename(columns={"holm_verdict": "holm_verdict_notebook"}).drop(columns=["holm_p"], errors="ignore")
    return holm_all(claims)


def claims_page(claims: pd.DataFrame) -> pd.DataFrame:
    """The reading table: notebook, claim, difference with its interval, raw and Holm verdict, each row against
    the pretrained model, and why a claim is not read."""

    def cell(v, lo, hi):
        return "" if not np.isfinite(v) else f"{v:+.1f} [{lo:.1f}, {hi:.1f}]"

    return pd.DataFrame({
        "notebook": claims["notebook"], "claim": claims["claim"],
        "difference (points)": [cell(*x) for x in zip(claims["difference"], claims["ci_low"], claims["ci_high"])],
        "verdict": claims["verdict"], "Holm (all claims)": claims["holm_verdict"],
        "A - pretrained": [cell(*x) for x in zip(claims["a_minus_pretrained"], claims["a_low"], claims["a_high"])],
        "B - pretrained": [cell(*x) for x in zip(claims["b_minus_pretrained"], claims["b_low"], claims["b_high"])],
        "reading": [p if isinstance(p, str) and p else (m if isinstance(m, str) else "")
                    for p, m in zip(claims["perception"], claims["moved"])],
    })


def what_can_be_tested(perception: pd.DataFrame | None) -> str:
    """Which tests each family's base models perceive (notebook 02's gate), and so which claims can be read."""
    if perception is None or perception.empty:
        return ("No perception report was found (notebook 02 writes it): whether the base models see what the tests "
                "ask is unknown, and no claim below should be read as a finding about the objectives.")
    return ("What this run can test (notebook 02's perception gate, read on every base model before any claim): "
            + perception_takeaway(perception) + " Where the pretrained models do not see the difference, no "
            "fine-tuning objective can be told apart from another.")


def claims_line(claims: pd.DataFrame) -> str:
    """The claims of every notebook in two or three sentences, Holm's adjustment over all of them included."""
    if claims.empty:
        return "No claim table was found."
    text = claims_takeaway(claims).replace("the table's claims", f"all {len(claims)} claims")
    return text


def qa_line(qa: pd.DataFrame | None) -> str:
    """Table 2 under the three judges: the headline first answer, exact match and containment, per family."""
    if qa is None or qa.empty:
        return "No QA table was found."
    overall = qa[qa["all"] == "all"] if "all" in qa.columns else qa  # the by-type lines have no "all" value
    sentences = []
    for family, part in overall.groupby("family", sort=False) if "family" in overall.columns else [(None, overall)]:
        wide = part.pivot_table(index="row", columns="metric", values="value", aggfunc="first")
        rows = [r for r in ROWS if r in wide.index]
        cells = {m: " / ".join(f"{100 * wide.loc[r, m]:.1f}" for r in rows) for m in ("first_answer", "exact",
                                                                                      "contains") if m in wide}
        label = FAMILY_LABELS.get(family, family) if family else "QA"
        order = " / ".join(ROW_LABELS.get(r, r) for r in rows)
        sentences.append(f"{label} ({order}): first answer {cells.get('first_answer', '-')}; exact match "
                         f"{cells.get('exact', '-')}; contains {cells.get('contains', '-')}")
    return ("QA accuracy (%) under the three judges, " + "; ".join(sentences) + ". The first answer span is the "
            "headline: 'contains' credits a gold word anywhere in a run-on answer, so it favours the models "
            "fine-tuned to write corrections (PROTOCOL.md, \"QA judge\").")


def verdict_counts(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims per notebook and verdict, raw and after Holm over all claims."""
    if claims.empty:
        return pd.DataFrame()
    raw = claims.groupby(["notebook", "verdict"], sort=False).size().rename("claims").reset_index()
    adjusted = claims.groupby(["notebook", "holm_verdict"], sort=False).size().rename("claims (Holm)").reset_index()
    return raw.merge(adjusted.rename(columns={"holm_verdict": "verdict"}), on=["notebook", "verdict"],
                     how="outer").fillna(0).astype({"claims": int, "claims (Holm)": int})

