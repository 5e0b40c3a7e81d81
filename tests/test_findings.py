"""Findings sentences and chance levels, on literal tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from hacalib.metrics.chance import majority_baseline, random_hit_at_k, random_ranking, random_ranking_ap
from hacalib.report.findings import chance_lines, claim_lines, curve_reading, findings
from hacalib.report.claims import claim_check


def test_random_ranking_ap_and_hit_at_k_equal_enumeration():
    for n, r in ((6, 2), (7, 3), (5, 1), (4, 4)):
        aps, hits = [], []
        for pos in itertools.combinations(range(1, n + 1), r):
            aps.append(np.mean([(i + 1) / rank for i, rank in enumerate(pos)]))
            hits.append(pos[0] <= 2)
        assert random_ranking_ap(r, n) == pytest.approx(np.mean(aps))
        assert random_hit_at_k(r, n, 2) == pytest.approx(np.mean(hits))
    match = np.zeros((2, 216), dtype=bool)
    match[:, :12] = True  # SSv2-Temporal's shape: 12 positives of 216 per query
    assert random_ranking(match)["map"] == pytest.approx(0.0773, abs=1e-4)


def test_majority_baseline_per_type_and_weighted_overall():
    out = majority_baseline(["Red", "red", "blue", "left", "right", "left", "left"],
                            ["what", "what", "what", "where", "where", "where", "where"]).set_index("type")
    assert out.loc["what", "majority_answer"] == "red" and out.loc["what", "accuracy"] == pytest.approx(2 / 3)
    assert out.loc["where", "accuracy"] == pytest.approx(3 / 4)
    assert out.loc["all", "accuracy"] == pytest.approx(5 / 7) and out.loc["all", "questions"] == 7


def _claims():
    frame = lambda m: pd.DataFrame({"all": "all", "acc": [m] * 10})  # noqa: E731
    per_item = {}
    for base, (a, b, c) in enumerate([(0.8, 0.5, 0.60), (0.7, 0.5, 0.40), (0.9, 0.6, 0.55)]):
        for seed in (0, 1):
            per_item[("haca", base, seed)] = frame(a + 0.01 * seed)
            per_item[("entail", base, seed)] = frame(b)
            per_item[("haca_mask", base, seed)] = frame(c)
    return claim_check(per_item, "all", "acc", [
        ("HACA > entail", "haca", "entail", "all"),
        ("entail > HACA", "entail", "haca", "all"),
        ("HACA+mask > entail", "haca_mask", "entail", "all"),
        ("HACA+mask keeps entail", "haca_mask", "entail", "all", "not_lower"),
    ])


def test_claims_become_sentences_with_their_verdicts():
    claims = _claims()
    assert claims["verdict"].tolist() == ["supported", "contradicted", "inconclusive", "inconclusive"]
    assert "a loss of up to" in claim_lines(claims)[3]  # "keeps" with an interval that holds 0 says what it allows
    lines = claim_lines(claims)
    assert lines[0].startswith("**HACA > entail**: +27.2 points [12.8, 41.5]") and "3 of 3 base models" in lines[0]
    # four claims at 95% each: after Holm's adjustment the two decided ones are no longer established
    assert lines[0].endswith("**supported** (after Holm's adjustment over the table's claims: inconclusive).")
    assert claims["holm_verdict"].tolist()[:2] == ["inconclusive", "inconclusive"]
    assert "0 of 3 base models" in lines[1] and "**contradicted** (after Holm" in lines[1]
    assert "1 of 3 base models" in lines[2] and lines[2].endswith("**inconclusive**.")


def _summary(rows):
    return pd.DataFrame([{"row": r, "test": t, "metric": "classic_vle", "value": v, "ci_low": lo, "ci_high": hi}
                         for r, t, v, lo, hi in rows])


def test_chance_lines_say_above_at_and_below_chance():
    summary = _summary([("pretrained", "coref", 0.52, 0.45, 0.59), ("haca", "coref", 0.48, 0.40, 0.56),
                        ("pretrained", "agent_iden", 0.84, 0.80, 0.88), ("haca", "agent_iden", 0.51, 0.47, 0.55),
                        ("entail", "agent_iden", 0.30, 0.20, 0.40)])
    coref, iden = chance_lines(summary, "test", "classic_vle", 0.5)
    assert coref == ("**coref** (chance: 50.0%): every row is within its interval of chance (Pretrained 52.0, "
                     "HACA 48.0): no model is distinguishable from it on this test.")
    assert iden == ("**agent_iden** (chance: 50.0%): above chance: Pretrained 84.0; within its interval of chance: "
                    "HACA 51.0; below chance: Entail-only FT 30.0.")
    per_group = chance_lines(summary, "test", "classic_vle", {"coref": 0.25, "agent_iden": 0.9}, what="base rate")
    assert per_group[0].startswith("**coref** (base rate: 25.0%): above base rate: Pretrained 52.0, HACA 48.0")


def test_curve_reading_and_the_section():
    curve = pd.DataFrame({"mask_ratio": [0.0, 0.45], "test": "all", "value": [0.5, 0.7],
                          "ci_low": [0.45, 0.65], "ci_high": [0.55, 0.75]})
    text = curve_reading(curve, "mask_ratio", group_value="all")
    assert text == "all: 0%: 50.0 [45.0, 55.0]; 45%: 70.0 [65.0, 75.0]; the highest point is 45%, and some intervals do not overlap."
    section = findings("T", "Measured.", claims=claim_lines(_claims()), reference=["r"], reading=["x"])
    assert section.startswith("## Findings: T\n\nMeasured.") and "not reproduced here" in section
    assert section.index("The paper's claims") < section.index("Against chance") < section.index("Reading")


def test_judges_reading_names_the_models_credited_for_answers_they_did_not_give():
    from hacalib.report.findings import judges_reading

    overall = pd.DataFrame({"row": ["pretrained"] * 3 + ["haca"] * 3, "all": "all",
                            "metric": ["first_answer", "exact", "contains"] * 2,
                            "value": [0.56, 0.56, 0.56, 0.44, 0.16, 0.58]})
    text = judges_reading(overall)
    assert "after a different first answer): Pretrained 0.0, HACA 14.0" in text
    assert "followed by more words): Pretrained 0.0, HACA 28.0" in text and "HACA run on after a wrong" in text
    quiet = overall.assign(value=[0.56, 0.56, 0.56, 0.57, 0.55, 0.58])
    assert "run on" not in judges_reading(quiet)


def test_findings_open_with_the_takeaway():
    section = findings("T", "Measured.", takeaway=["First.", "Second."], reading=["x"])
    assert section.startswith("## Findings: T\n\n**In short.** First. Second.\n\nMeasured.")


def test_ties_reading_says_whether_the_conventions_differ():
    from hacalib.report.findings import ties_reading

    same = {("haca", 0, 0): pd.DataFrame({"map": [0.2, 0.3], "map_videocon": [0.2, 0.3]})}
    assert "identical on every query of all 1 runs" in ties_reading(same)
    apart = {("haca", 0, 0): pd.DataFrame({"map": [0.2, 0.3], "map_videocon": [0.2, 0.35]})}
    assert "differ by up to 5.00 points" in ties_reading(apart)


def test_failure_examples_say_whether_a_case_confirms_or_prefers():
    from hacalib.report.analysis import failure_examples

    pairs = pd.DataFrame({"video": ["a", "b", "c"], "neg_caption": ["x", "y", "z"], "misalignment": ["object", "flip", "action"],
                          "p_true": [0.40, 0.20, 0.90], "p_false": [0.70, 0.34, 0.10]})
    answers = pd.DataFrame({"video": ["a", "b", "c"], "neg_caption": ["x", "y", "z"], "answer": ["Yes", "No", "No"],
                            "correction": ["", "", ""], "overlap_true": [0.0, 0.0, 0.0]})
    cases = failure_examples(pairs, answers)
    assert cases["video"].tolist() == ["a", "b"]  # c is right on both counts
    assert cases["failure"].tolist() == ["confirms", "prefers"]  # P(yes) 0.34 is a ranking error, not a confirmation


def test_curve_reading_with_every_run_collapsed_says_so():
    curve = pd.DataFrame({"test": "mean of all items", "mask_ratio": [0.0, 0.45], "value": [np.nan, np.nan],
                          "ci_low": [np.nan, np.nan], "ci_high": [np.nan, np.nan]})
    assert "every run's P(yes) is constant" in curve_reading(curve, "mask_ratio", group_value="mean of all items")


def test_takeaways_are_one_sentence_from_the_tables():
    from hacalib.report.findings import chance_takeaway, curve_takeaway

    summary = _summary([("pretrained", "coref", 0.52, 0.45, 0.59), ("haca", "coref", 0.48, 0.40, 0.56),
                        ("pretrained", "agent_iden", 0.84, 0.80, 0.88), ("entail", "agent_iden", 0.30, 0.20, 0.40)])
    assert chance_takeaway(summary, "test", "classic_vle", 0.5) == (
        "On 1 of 2 tests every row is within its interval of chance; some row is above it on agent_iden; some row "
        "is below it on agent_iden.")
    own = pd.concat([summary, summary.assign(metric="own", value=0.9)])  # every row's own chance above its interval
    assert "some row is below it on coref, agent_iden" in chance_takeaway(own, "test", "classic_vle",
                                                                        chance_metric="own")
    curve = pd.DataFrame({"test": "all", "mask_ratio": [0.0, 0.45], "value": [0.5, 0.7], "ci_low": [0.45, 0.66],
                          "ci_high": [0.55, 0.74]})
    assert curve_takeaway(curve, "mask_ratio", group_value="all").startswith("Some mask ratios differ on the all")
    assert curve_takeaway(curve.assign(ci_high=[0.7, 0.8]), "mask_ratio", group_value="all").startswith("No mask")


def test_failure_reading_compares_with_chance():
    from hacalib.report.findings import failure_reading

    counts = pd.DataFrame({"run": ["HACA (base 0, seed 0)"], "agent_iden": [0.1], "agent_bind": [0.505]})
    confirmed = pd.DataFrame({"run": ["HACA (base 0, seed 0)"], "all": [0.25]})
    lines = failure_reading(counts, confirmed)
    assert lines[0] == ("HACA (base 0, seed 0): wrong on 10.0-50.5% of the pairs per test (chance: 50%); clearly "
                        "better than chance on agent_iden (10.0%).")


def test_data_takeaway_from_the_counts_rows_and_masking():
    from types import SimpleNamespace

    from hacalib.report.findings import data_takeaway

    counts = pd.DataFrame({"objective": ["entail", "haca"], "pos": [10, 10], "neg": [10, 10]})
    rows = [SimpleNamespace(misalignment=t) for t in ("object", "flip", "object", "flip")]
    masked = [SimpleNamespace(masked_words=["a", "b"], n_content=4)]
    assert data_takeaway(counts, rows, masked, 0.45) == (
        "Every objective trains on the same 10 aligned and 10 contrast examples (balanced: answering Yes to all is "
        "right on 50%); the training split has 2 misalignment types, 50.0-50.0% each, and masking at 0.45 hides "
        "50.0% of their content words.")
