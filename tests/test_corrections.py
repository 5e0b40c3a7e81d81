"""Correction quality, measured where the model said No, against copying the contrast caption; judgements are
recomputed from the raw text whenever a results file is read."""

import numpy as np
import pandas as pd
import pytest

from hacalib.metrics.corrections import changed_spans, correction_measures, recovers_change, says_no
from hacalib.scoring.derived import read_results

TRUE = "a red circle moves left"
CONTRAST = "a blue circle moves left"


def test_says_no_is_the_first_word():
    assert says_no("No, a red circle") and says_no("no.") and not says_no("Nothing here") and not says_no("Yes")


def test_changed_spans_cover_replacements_and_swaps():
    assert changed_spans(TRUE, CONTRAST) == [["red"]]
    flip = changed_spans("a circle moves then a square moves", "a square moves then a circle moves")
    assert flip and all(span for span in flip)  # an order swap changes spans too (01's blank column for flip)


def test_measures_only_where_the_model_said_no():
    yes = correction_measures("Yes", TRUE, CONTRAST)
    assert yes["says_no"] == 0 and all(np.isnan(yes[k]) for k in ("exact", "recovered", "overlap_true"))
    exact = correction_measures(f"No, {TRUE}.", TRUE, CONTRAST)
    assert exact == {"says_no": 1.0, "exact": 1.0, "recovered": 1.0, "overlap_true": 1.0, "overlap_copy": 0.8}
    copy = correction_measures(f"No, {CONTRAST}", TRUE, CONTRAST)
    assert copy["exact"] == 0 and copy["recovered"] == 0 and copy["overlap_true"] == copy["overlap_copy"] == 0.8
    partial = correction_measures("No, a red square", TRUE, CONTRAST)
    assert partial["recovered"] == 1.0 and partial["exact"] == 0.0 and partial["overlap_true"] == pytest.approx(0.4)
    assert not recovers_change("a green circle moves left", TRUE, CONTRAST)


def test_a_cached_file_is_judged_by_todays_judges(tmp_path):
    """A results file written by an older judge (stale columns, a removed one) reads back with fresh judgements."""
    qa = tmp_path / "qa.csv"
    pd.DataFrame({"question_id": [1, 2], "type": "what", "question": "q", "answer": ["two", "dog"],
                  "prediction": ["three , there are two", ""], "exact": [1.0, 1.0], "contains": [0.0, 0.0]}
                 ).to_csv(qa, index=False)
    got = read_results("qa", qa)
    assert got["first_answer"].tolist() == [0.0, 0.0] and got["contains"].tolist() == [1.0, 0.0]
    assert got["exact"].tolist() == [0.0, 0.0]
    gens = tmp_path / "corrections.csv"
    pd.DataFrame({"misalignment": "object", "video": "v.mp4", "caption": [TRUE], "neg_caption": [CONTRAST],
                  "answer": [f"No, {TRUE}"], "says_no": [False], "differs_from_contrast": [False],
                  "overlap_true": [0.0], "overlap_contrast": [0.0]}).to_csv(gens, index=False)
    got = read_results("corrections", gens)
    assert "differs_from_contrast" not in got and got.loc[0, "exact"] == 1.0 and got.loc[0, "correction"] == TRUE
    assert read_results("velociti", gens).equals(pd.read_csv(gens, keep_default_na=False, na_values=[""]))


def test_quality_is_over_the_no_answers_beside_the_copy_baseline():
    from hacalib.report.corrections import correction_quality, correction_verdict, quality_reading
    from hacalib.scoring.derived import measure_corrections

    def run(answers):
        return measure_corrections(pd.DataFrame({"misalignment": "object", "video": "v.mp4", "caption": TRUE,
                                                 "neg_caption": CONTRAST, "answer": answers}))

    gens = {("pretrained", b, 0): run(["Yes"] * 4) for b in range(2)}
    gens.update({("haca", b, s): run([f"No, {TRUE}", "Yes", "No, a green circle moves left", "Yes"])
                 for b in range(2) for s in range(2)})
    q = correction_quality(gens).set_index(["row", "metric"])["value"]
    assert q[("haca", "says_no")] == 0.5 and q[("haca", "exact")] == 0.5  # one of its two No answers is exact
    assert q[("haca", "overlap_copy")] == pytest.approx(0.8) and np.isnan(q[("pretrained", "exact")])
    text = quality_reading(correction_quality(gens))
    assert "HACA answers No to 50.0%" in text and "50.0% are exact" in text
    assert correction_verdict(gens[("haca", 0, 0)].iloc[2]) == "wrong correction"
    assert correction_verdict(gens[("haca", 0, 0)].iloc[1]).startswith("said Yes")


def test_a_results_file_cut_short_is_scored_again_not_read(tmp_path):
    """Issue 30: a cached per-item CSV cut from 48 to 24 items came back with fewer items and no error."""
    from hacalib.scoring.cached_results import cached_results, record_path, write_results

    path = tmp_path / "eval" / "velociti-x.csv"
    full = pd.DataFrame({"test": ["agent_bind"] * 24 + ["coref"] * 24, "p_pos": 0.6, "p_neg": 0.4})
    write_results(full, path)
    assert len(cached_results("velociti", path)) == 48
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:25]) + b"\r\n")  # a partial copy: the header and 24 rows
    with pytest.warns(UserWarning, match=r"velociti-x\.csv: changed after it was written \(recorded 48 rows"):
        assert cached_results("velociti", path) is None
    assert not path.exists() and not record_path(path).exists()  # the caller scores it again


def test_a_results_file_from_before_records_is_recorded_on_first_read(tmp_path):
    from hacalib.scoring.cached_results import cached_results, record_path

    path = tmp_path / "velociti-x.csv"
    pd.DataFrame({"test": ["coref"], "p_pos": [0.6], "p_neg": [0.4]}).to_csv(path, index=False)
    assert len(cached_results("velociti", path)) == 1 and record_path(path).is_file()
    path.write_text(path.read_text() + "coref,0.1,0.9\n")
    with pytest.warns(UserWarning):
        assert cached_results("velociti", path) is None
