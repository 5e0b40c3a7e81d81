"""The perception gate: the readout of a base model per test, its control, and claims that get no verdict where the
base models do not perceive what a test asks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hacalib.report.findings import claim_lines
from hacalib.report.perception import (
    GATE,
    perception_reading,
    perception_report,
    qa_probes,
    retrieval_readout,
    verdicts_per_test,
    untestable,
)
from hacalib.report.claims import NOT_TESTABLE, claim_check
from hacalib.scoring.evaluate import other_video


def _velociti_ll(test: str, own: list[bool], other: list[bool]) -> pd.DataFrame:
    n = len(own)
    return pd.DataFrame({"test": test, "video_id": [f"v{i}" for i in range(n)], "event": "Ev1",
                         "other_video_id": [f"v{(i + 1) % n}" for i in range(n)], "pos": "p", "neg": "n",
                         "ll_pos": np.where(own, -1.0, -2.0), "ll_neg": -1.5,
                         "ll_pos_other": np.where(other, -1.0, -2.0), "ll_neg_other": -1.5})


def _frame(tests: dict[str, tuple[float, float]], n: int = 100) -> pd.DataFrame:
    """VELOCITI log-likelihoods whose readout is exactly `value` and whose control is `control`, per test."""
    return pd.concat([_velociti_ll(t, [i < round(v * n) for i in range(n)], [i < round(c * n) for i in range(n)])
                      for t, (v, c) in tests.items()], ignore_index=True)


@pytest.mark.parametrize("value,control,passes", [
    (0.75, 0.60, True),     # every bound met exactly
    (0.74, 0.50, False),    # readout too low
    (0.80, 0.66, False),    # the text gives it away
    (0.78, 0.64, False),    # not 15 points above the control
    (1.00, 0.50, True),
])
def test_the_gate_applies_the_three_bounds(value, control, passes):
    report = perception_report({"velociti": {("pretrained", 0, 0): _frame({"agent_bind": (value, control)})}})
    line = report.iloc[0]
    assert line["value"] == pytest.approx(value) and line["control"] == pytest.approx(control)
    assert bool(line["passes"]) is passes
    assert line["ci_low"] <= value <= line["ci_high"] and line["items"] == 100


def test_report_columns_and_one_row_per_family_base_benchmark_test():
    frames = {(f, "pretrained", b, 0): _frame({"agent_bind": (0.9, 0.5), "coref": (0.6, 0.5)})
              for f in ("video_llava", "videochat2") for b in (0, 1)}
    report = perception_report({"velociti": frames})
    assert list(report.columns[:8]) == ["family", "base", "benchmark", "test", "value", "ci_low", "ci_high",
                                        "control"]
    assert len(report) == 2 * 2 * 2
    assert set(report["benchmark"]) == {"velociti"}


def test_a_test_is_read_only_when_every_base_model_passes():
    frames = {("video_llava", "pretrained", 0, 0): _frame({"agent_bind": (0.9, 0.5), "coref": (0.9, 0.5)}),
              ("video_llava", "pretrained", 1, 0): _frame({"agent_bind": (0.9, 0.5), "coref": (0.7, 0.5)})}
    report = perception_report({"velociti": frames})
    verdicts = verdicts_per_test(report).set_index("test")
    assert bool(verdicts.loc["agent_bind", "testable"]) and not bool(verdicts.loc["coref", "testable"])
    assert verdicts.loc["coref", "bases_passing"] == 1
    why = untestable(report, "velociti")
    assert list(why["video_llava"]) == ["coref"] and "1 of 2 base models pass" in why["video_llava"]["coref"]
    text = perception_reading(report)
    assert "1 of 2 tests pass" in text and "coref" in text


def test_only_base_models_are_read():
    with pytest.raises(ValueError, match="base models only"):
        perception_report({"velociti": {("haca", 0, 0): _frame({"agent_bind": (0.9, 0.5)})}})
    with pytest.raises(ValueError, match="unknown readout benchmark"):
        perception_report({"qa": {}})


def _claim_runs(diff_by_test: dict[str, float]) -> dict:
    """Per-item frames of pretrained / haca / entail with ClassicVLE correctness, haca ahead by `diff` per test."""
    rng = np.random.default_rng(0)
    runs = {}
    for row, base, seed in [("pretrained", b, 0) for b in (0, 1, 2)] + \
            [(r, b, s) for r in ("haca", "entail") for b in (0, 1, 2) for s in (0, 1)]:
        parts = []
        for test, diff in diff_by_test.items():
            p = 0.5 + (diff if row == "haca" else 0.0)
            parts.append(pd.DataFrame({"test": test, "classic_vle": (rng.random(400) < p).astype(float)}))
        runs[("video_llava", row, base, seed)] = pd.concat(parts, ignore_index=True)
    return runs


def test_a_claim_on_an_unperceived_test_gets_no_verdict_but_keeps_its_numbers():
    runs = _claim_runs({"agent_bind": 0.3, "coref": 0.3})
    claims = [("HACA > entail on agent_bind", "haca", "entail", "agent_bind"),
              ("HACA > entail on coref", "haca", "entail", "coref")]
    plain = claim_check(runs, "test", "classic_vle", claims)
    assert list(plain["verdict"]) == ["supported", "supported"]
    gated = claim_check(runs, "test", "classic_vle", claims,
                        untestable={"video_llava": {"coref": "base readout 0.55 / control 0.50"}})
    assert list(gated["verdict"]) == ["supported", NOT_TESTABLE]
    assert gated.loc[1, "difference"] == pytest.approx(plain.loc[1, "difference"])
    assert gated.loc[1, "perception"] == "base readout 0.55 / control 0.50" and gated.loc[0, "perception"] == ""
    lines = claim_lines(gated)
    assert NOT_TESTABLE in lines[1] and "base readout 0.55" in lines[1] and NOT_TESTABLE not in lines[0]


def test_the_control_video_is_another_video_and_deterministic():
    videos = ["a", "a", "b", "c", "c", "a"]
    others = other_video(videos)
    assert others == other_video(videos)
    assert all(videos[j] != v for v, j in zip(videos, others))
    assert other_video(["a", "a"]) == [0, 1]  # nothing else to read: the item's own (the caller sees it)
    assert all(videos[j] not in {"b", v} for v, j in zip(videos, other_video(videos, [{"b"}] * 6)))


def test_retrieval_control_uses_a_video_that_shows_neither_template():
    # 3 templates x 6 videos, two of each; the model "sees" perfectly: the matching template has the higher ll
    queries, videos = ["q0", "q1", "q2"], [f"v{i}" for i in range(6)]
    match = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]])
    rows = [{"benchmark": "toy", "query": q, "video": v, "ll": -1.0 if match[i, j] else -3.0 - i,
             "match": int(match[i, j])} for j, v in enumerate(videos) for i, q in enumerate(queries)]
    read = retrieval_readout(pd.DataFrame(rows))
    assert len(read) == 6 * 2  # each video: its template against each of the two others
    assert read["own"].mean() == 1.0
    # on a video showing neither, the comparison is the text prior alone: q0 (-3) beats q1 (-4) beats q2 (-5)
    assert read["other"].mean() == pytest.approx(0.5)


def test_qa_probes_compare_each_type_with_its_majority_answer():
    df = pd.DataFrame({"type": ["where"] * 4 + ["what"] * 2, "answer": ["left", "left", "left", "up", "red", "blue"],
                       "first_answer": [1, 1, 0, 0, 1, 1]})
    probes = qa_probes({("video_llava", "pretrained", 0, 0): df}).set_index("type")
    assert probes.loc["where", "accuracy"] == 0.5 and probes.loc["where", "chance"] == 0.75
    assert probes.loc["what", "accuracy"] == 1.0 and probes.loc["what", "chance"] == 0.5


def test_the_gate_is_the_issue_bounds():
    assert (GATE.min_value, GATE.min_margin, GATE.max_control) == (0.75, 0.15, 0.65)
