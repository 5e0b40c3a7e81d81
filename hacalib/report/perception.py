"""The perception report: does a base model see the difference a test asks about, before any claim is read?

A claim such as "HACA beats entail-only on agent binding" says something only if the pretrained model perceives
agent binding at all: fine-tuning the yes/no answer (all HACA changes) cannot use what the model does not see. So each
test is first read off every base model by its captioning head (the paper's setting: the base perceives while its
yes/no judgement may not use it):

- `value`: the share of pairs where log p(true caption | video) > log p(contrast caption | video) (ties count as
  wrong), on the pair's own video;
- `control`: the same on another video: what the text alone gives away.

A test passes the gate (`GATE`) when, on every base model of a family, `value` >= 0.75, `value` >= `control` + 0.15
and `control` <= 0.65. A claim on a test that fails it gets no verdict (`untestable`): "not testable in this world",
with the readout. The numbers come from `hacalib.scoring.evaluate` (`videocon_loglik`, `velociti_loglik`,
`retrieval_loglik`); intervals are Wilson score intervals over the items of one base model.

May import: numpy, pandas, scipy, its own package's modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ..config import FAMILY_LABELS
from ..metrics.controls import other_video
from .tables import by_family, run_key

COLUMNS = ["family", "base", "benchmark", "test", "value", "ci_low", "ci_high", "control", "control_low",
           "control_high", "items", "passes"]


@dataclass(frozen=True)
class Gate:
    """What a base model's readout must reach for a test to be read: the issue's bounds (PROTOCOL "Perception")."""

    min_value: float = 0.75  # the captioning head prefers the true caption in 3 of 4 pairs
    min_margin: float = 0.15  # ... clearly more often than on another video
    max_control: float = 0.65  # ... and the text alone does not give the answer away

    def passes(self, value: float, control: float) -> bool:
        return bool(value >= self.min_value and value - control >= self.min_margin and control <= self.max_control)

    def describe(self) -> str:
        return (f"readout >= {self.min_value:.2f}, at least {self.min_margin:.2f} above its control on another video, "
                f"control <= {self.max_control:.2f}, on every base model")


GATE = Gate()


def videocon_readout(logliks: pd.DataFrame) -> pd.DataFrame:
    """Per held-out VideoCon pair (`evaluate.videocon_loglik`): test (the misalignment type), own, other (1.0 where
    the true caption wins on its own / on another video)."""
    return _readout(logliks["misalignment"], logliks["ll_true"] > logliks["ll_false"],
                    logliks["ll_true_other"] > logliks["ll_false_other"], "videocon_loglik")


def velociti_readout(logliks: pd.DataFrame) -> pd.DataFrame:
    """Per VELOCITI item (`evaluate.velociti_loglik`): test, own, other (the positive caption wins)."""
    return _readout(logliks["test"], logliks["ll_pos"] > logliks["ll_neg"],
                    logliks["ll_pos_other"] > logliks["ll_neg_other"], "velociti_loglik")


def retrieval_readout(logliks: pd.DataFrame) -> pd.DataFrame:
    """Per (video, matching query, non-matching query) of each retrieval matrix (`evaluate.retrieval_loglik`): test
    (the matrix), own (the matching template wins on the video), other (it wins on the next video of the matrix that
    matches neither template: the text prior of the two templates)."""
    tests, own, other = [], [], []
    for name, df in logliks.groupby("benchmark", sort=False):
        ll = df.pivot(index="query", columns="video", values="ll")
        match = df.pivot(index="query", columns="video", values="match").loc[ll.index, ll.columns].to_numpy() > 0
        ll, videos = ll.to_numpy(dtype=float), list(ll.columns)
        for q_pos, q_neg in ((a, b) for a in range(len(ll)) for b in range(len(ll)) if a != b):
            shows_either = set(np.asarray(videos)[match[q_pos] | match[q_neg]])
            controls = other_video(videos, [shows_either] * len(videos))
            for v in np.flatnonzero(match[q_pos] & ~match[q_neg]):
                w = controls[v]
                if w == v:
                    continue  # every other video shows one of the two: no control for this pair
                tests.append(name)
                own.append(ll[q_pos, v] > ll[q_neg, v])
                other.append(ll[q_pos, w] > ll[q_neg, w])
    return _readout(pd.Series(tests, dtype=object), np.array(own, dtype=bool), np.array(other, dtype=bool),
                    "ssv2_loglik")


def _readout(tests, own, other, source: str) -> pd.DataFrame:
    frame = pd.DataFrame({"test": np.asarray(tests, dtype=object), "own": np.asarray(own, dtype=float),
                          "other": np.asarray(other, dtype=float)})
    if frame.empty:
        raise ValueError(f"{source}: no pairs to read")
    return frame


READERS = {"videocon": ("videocon_loglik", videocon_readout), "velociti": ("velociti_loglik", velociti_readout),
           "ssv2": ("ssv2_loglik", retrieval_readout)}  # report benchmark -> (per-item benchmark, reader)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a share."""
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def perception_report(readouts: Mapping[str, Mapping[tuple, pd.DataFrame]], gate: Gate = GATE) -> pd.DataFrame:
    """One row per (family, base, benchmark, test): the readout, its control and whether it passes `gate`.

    Args:
        readouts: report benchmark ("videocon", "velociti", "ssv2"; `READERS`) -> the pretrained runs' per-item
            log-likelihood frames keyed (family, "pretrained", base, seed) as `Study.collect` returns them (or
            (row, base, seed) without a family).
    """
    lines = []
    for benchmark, runs in readouts.items():
        if benchmark not in READERS:
            raise ValueError(f"unknown readout benchmark {benchmark!r}; known: {', '.join(READERS)}")
        read = READERS[benchmark][1]
        for family, family_runs in by_family(runs).items():
            for key, frame in family_runs.items():
                row, base, _ = run_key(key)
                if row != "pretrained":
                    raise ValueError(f"the perception report reads base models only, got run {key}")
                for test, items in read(frame).groupby("test", sort=False):
                    n, own, other = len(items), int(items["own"].sum()), int(items["other"].sum())
                    value, control = own / n, other / n
                    lines.append({"family": family, "base": base, "benchmark": benchmark, "test": test,
                                  "value": value, "ci_low": wilson(own, n)[0], "ci_high": wilson(own, n)[1],
                                  "control": control, "control_low": wilson(other, n)[0],
                                  "control_high": wilson(other, n)[1], "items": n,
                                  "passes": gate.passes(value, control)})
    return pd.DataFrame(lines, columns=COLUMNS)


def verdicts_per_test(report: pd.DataFrame) -> pd.DataFrame:
    """Per (family, benchmark, test): the readout and control averaged over base models, the lowest readout, how
    many base models pass, and whether the test is read (every base model passes)."""
    grouped = report.groupby(["family", "benchmark", "test"], sort=False, dropna=False)
    out = grouped.agg(value=("value", "mean"), lowest=("value", "min"), control=("control", "mean"),
                      highest_control=("control", "max"), bases=("base", "nunique"),
                      bases_passing=("passes", "sum")).reset_index()
    out["testable"] = out["bases_passing"] == out["bases"]
    return out


def untestable(report: pd.DataFrame, benchmark: str) -> dict[str | None, dict[str, str]]:
    """family -> {test: why it is not read} for `benchmark`'s tests that fail the gate on some base model; what
    `hacalib.report.claims.claim_check` takes as `untestable`."""
    out: dict[str | None, dict[str, str]] = {}
    verdicts = verdicts_per_test(report[report["benchmark"] == benchmark])
    for line in verdicts.itertuples():
        family = None if pd.isna(line.family) else line.family
        out.setdefault(family, {})
        if not line.testable:
            out[family][line.test] = (f"base readout {line.value:.2f} (lowest {line.lowest:.2f}) / control "
                                      f"{line.control:.2f}; {line.bases_passing} of {line.bases} base models pass")
    return out


def qa_probes(answers: Mapping[tuple, pd.DataFrame]) -> pd.DataFrame:
    """The world's question-answer probes beside the readout: per (family, base, question type) the pretrained
    model's accuracy on MSRVTT-QA-format questions (`evaluate.qa_answers`, judged by the first answer span) and the
    type's chance, the accuracy of always giving its most frequent answer (`hacalib.metrics.chance.majority_baseline`)."""
    from ..metrics.chance import majority_baseline

    lines = []
    for family, runs in by_family(answers).items():
        for key, df in runs.items():
            _, base, _ = run_key(key)
            chance = majority_baseline(df["answer"].astype(str), df["type"].astype(str)).set_index("type")
            for qtype, items in df.groupby("type", sort=False):
                n, right = len(items), int(items["first_answer"].astype(float).sum())
                low, high = wilson(right, n)
                lines.append({"family": family, "base": base, "type": qtype, "accuracy": right / n, "ci_low": low,
                              "ci_high": high, "chance": float(chance.loc[qtype, "accuracy"]),
                              "majority_answer": chance.loc[qtype, "majority_answer"], "questions": n})
    return pd.DataFrame(lines)


def perception_reading(report: pd.DataFrame, gate: Gate = GATE) -> str:
    """One paragraph: which tests every base model perceives, which it does not, and why not."""
    verdicts = verdicts_per_test(report)
    parts = []
    for family, lines in verdicts.groupby("family", sort=False, dropna=False):
        name = "" if pd.isna(family) else f"{FAMILY_LABELS.get(family, family)}: "
        read = [f"{r.benchmark} {r.test}" for r in lines.itertuples() if r.testable]
        text_given = [f"{r.benchmark} {r.test} (control {r.control:.2f}, up to {r.highest_control:.2f} > "
                      f"{gate.max_control:.2f})" for r in lines.itertuples()
                      if not r.testable and r.highest_control > gate.max_control]
        unseen = [f"{r.benchmark} {r.test} ({r.value:.2f} / {r.control:.2f})" for r in lines.itertuples()
                  if not r.testable and r.highest_control <= gate.max_control]
        parts.append(
            f"{name}{len(read)} of {len(lines)} tests pass the perception gate"
            + (f" ({', '.join(read)})" if read else "")
            + (f"; on some base model the text alone gives away {', '.join(text_given)}" if text_given else "")
            + (f"; the base models do not see {', '.join(unseen)} (readout / control)" if unseen else "") + ".")
    return (f"Perception gate: {gate.describe()}. " + " ".join(parts)
            + " A claim on a test that fails the gate gets no verdict: 'not testable in this world'.")


def perception_takeaway(report: pd.DataFrame) -> str:
    """'Video-LLaVA's base models perceive 4 of 16 tests (videocon hallucination, ...); VideoChat2's 5 of 16 (...).'"""
    parts = []
    for family, lines in verdicts_per_test(report).groupby("family", sort=False, dropna=False):
        name = "The base models" if pd.isna(family) else f"{FAMILY_LABELS.get(family, family)}'s base models"
        read = [f"{r.benchmark} {r.test}" for r in lines.itertuples() if r.testable]
        parts.append(f"{name} perceive {len(read)} of {len(lines)} tests" + (f" ({', '.join(read)})" if read else ""))
    return "; ".join(parts) + ". A claim on a test they do not perceive is not read (not testable in this world)."


def gate_grid(report: pd.DataFrame) -> pd.DataFrame:
    """The gate at a glance: one line per (benchmark, test), one column per family, cells 'passes 0.91 / 0.50' or
    'fails 0.52 / 0.48' (readout / control, means over the base models)."""
    verdicts = verdicts_per_test(report)
    verdicts = verdicts.assign(family=verdicts["family"].map(lambda f: FAMILY_LABELS.get(f, f)),
                               cell=[f"{'passes' if r.testable else 'fails'} {r.value:.2f} / {r.control:.2f}"
                                     for r in verdicts.itertuples()])
    grid = verdicts.pivot(index=["benchmark", "test"], columns="family", values="cell")
    order = list(dict.fromkeys(zip(verdicts["benchmark"], verdicts["test"])))
    return grid.reindex(order)[list(dict.fromkeys(verdicts["family"]))].reset_index().rename_axis(columns=None)
