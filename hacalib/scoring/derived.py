"""Per-item columns derived from a benchmark's raw outputs, recomputed every time its results file is read.

A generation benchmark's file keeps what the model wrote (the QA prediction, the answer to a contrast caption);
the judgements of that text are functions of it and of the gold text. They are computed here, on every read, so a
cached file never carries the judgement of an older judge: changing a judge changes every table that uses it,
with no scoring run again.

- `qa`: `first_answer` (the headline judge), `exact` and `contains` (`hacalib.metrics.qa`);
- `corrections`: `correction` and `hacalib.metrics.corrections`' measures.

May import: pandas, `hacalib.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..metrics.corrections import correction_measures, correction_text
from ..metrics.qa import contains_answer, exact_match, first_answer_match

QA_JUDGES = {"first_answer": first_answer_match, "exact": exact_match, "contains": contains_answer}
CORRECTION_MEASURES = ("says_no", "exact", "recovered", "overlap_true", "overlap_copy")


def _require(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} results lack column(s) {missing} (have {list(df.columns)})")


def judge_answers(df: pd.DataFrame) -> pd.DataFrame:
    """QA results (question_id, type, question, answer, prediction, ...) with the three judges' 0/1 per item."""
    _require(df, ("answer", "prediction"), "QA")
    preds = ["" if pd.isna(p) else str(p) for p in df["prediction"]]  # an empty answer reads back as NaN
    out = df.drop(columns=[c for c in QA_JUDGES if c in df.columns])
    return out.assign(**{name: judge(preds, df["answer"].astype(str)) for name, judge in QA_JUDGES.items()})


def measure_corrections(df: pd.DataFrame) -> pd.DataFrame:
    """Correction results (misalignment, video, caption, neg_caption, answer, ...) with the correction and its
    measures (NaN where the answer is not No)."""
    _require(df, ("caption", "neg_caption", "answer"), "correction")
    answers = ["" if pd.isna(a) else str(a) for a in df["answer"]]
    measures = pd.DataFrame([correction_measures(a, c, n) for a, c, n in zip(answers, df["caption"], df["neg_caption"])],
                            columns=list(CORRECTION_MEASURES), index=df.index)
    keep = [c for c in df.columns if c not in (*CORRECTION_MEASURES, "correction", "differs_from_contrast",
                                               "overlap_contrast")]
    return pd.concat([df[keep].assign(correction=[correction_text(a) for a in answers]), measures], axis=1)


DERIVED: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"qa": judge_answers, "corrections": measure_corrections}


def with_derived(benchmark: str, df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the benchmark's derived columns recomputed (unchanged for a benchmark that has none)."""
    derive = DERIVED.get(benchmark)
    return derive(df) if derive else df


def read_results(benchmark: str, path: Path) -> pd.DataFrame:
    """A per-item results CSV as written (empty cells stay empty strings, not NaN), derived columns recomputed."""
    return with_derived(benchmark, pd.read_csv(path, keep_default_na=False, na_values=[""]))
