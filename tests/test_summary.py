"""The summary page reads the other notebooks' tables: every claim with Holm over all of them, and a clear line when
the tables do not come from one run or are missing."""

import json

import numpy as np
import pandas as pd
import pytest

from hacalib.report.claims import NOT_TESTABLE, claim_check
from hacalib.report.summary import all_claims, claims_line, claims_page, read_tables, what_can_be_tested


def _write(out, name, df, commit="abc", **config):
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.provenance.json").write_text(json.dumps({"git_commit": commit,
                                                             "config": {"preset": "toy", **config}}))


def _claims(shift):
    rng = np.random.default_rng(0)
    runs = {}
    for row, p in (("pretrained", 0.6), ("entail", 0.6 - shift), ("haca", 0.6)):
        for base in range(3):
            for seed in ([0] if row == "pretrained" else [0, 1]):
                runs[(row, base, seed)] = pd.DataFrame({"test": "bind", "acc": (rng.random(60) < p).astype(float)})
    return claim_check(runs, "test", "acc", [("HACA > entail", "haca", "entail", "bind")])


def test_every_claim_on_one_page_with_holm_over_all(tmp_path):
    _write(tmp_path, "03_claims", _claims(0.3))
    _write(tmp_path, "04_claims", _claims(0.0).assign(verdict=NOT_TESTABLE))
    tables = read_tables(tmp_path)
    assert tables.consistency().startswith("All 2 tables (03_claims, 04_claims) come from one run: commit abc")
    claims = all_claims(tables)
    assert list(claims["notebook"]) == ["VELOCITI (03)", "SSv2 retrieval (04)"]
    assert claims["holm_verdict"].tolist() == ["supported", NOT_TESTABLE]
    page = claims_page(claims)
    assert page.loc[0, "reading"].startswith("HACA above Entail-only FT because Entail-only FT fell below it")
    text = claims_line(claims)
    assert "1 is not testable" in text and "Holm's adjustment over all 2 claims" in text


def test_tables_from_two_runs_are_named_and_old_tables_refused(tmp_path):
    _write(tmp_path, "03_claims", _claims(0.3), commit="abc", seeds=[0, 1])
    _write(tmp_path, "04_claims", _claims(0.3), commit="def", seeds=[0])
    assert "do not come from one run**: they differ in git_commit, seeds" in read_tables(tmp_path).consistency()
    _write(tmp_path, "05_claims", _claims(0.3).drop(columns=["p_value"]))
    with pytest.raises(ValueError, match="05_claims.csv lacks column.*re-run notebook 05"):
        all_claims(read_tables(tmp_path))


def test_no_perception_report_says_nothing_can_be_read_as_a_finding(tmp_path):
    assert "whether the base models see what the tests ask is unknown" in what_can_be_tested(read_tables(tmp_path).perception)
