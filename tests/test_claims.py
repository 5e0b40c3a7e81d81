"""Claims read against the pretrained row and against each other: the decomposition, its sentence, Holm."""

import numpy as np
import pandas as pd
import pytest

from hacalib.metrics import nested_interval
from hacalib.metrics.multiplicity import holm_adjust
from hacalib.report.claims import NOT_TESTABLE, claim_check, holm, multiplicity_note
from hacalib.report.findings import claims_takeaway


def _runs(levels: dict[str, list[float]], items: int = 40, seed: int = 0):
    """Per-item 0/1 frames of every (row, base, seed) run; levels: row -> per-base success rate."""
    rng = np.random.default_rng(seed)
    out = {}
    for row, per_base in levels.items():
        for base, p in enumerate(per_base):
            for s in ([0] if row == "pretrained" else [0, 1]):
                out[(row, base, s)] = pd.DataFrame({"test": "bind", "acc": (rng.random(items) < p).astype(float)})
    return out


def test_holm_adjust_matches_the_step_down_rule_and_skips_unread_claims():
    adjusted = holm_adjust([0.01, 0.04, np.nan, 0.03, 0.5])
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert np.isnan(adjusted[2])


def test_interval_p_value_agrees_with_the_interval():
    rng = np.random.default_rng(1)
    for shift in (0.0, 0.05, 0.2, -0.3):
        runs = {(b, s): rng.normal(shift + 0.05 * b, 0.5, 30) for b in range(3) for s in range(2)}
        ci = nested_interval(runs)
        assert (ci.p_value < 0.05) == (ci.low > 0 or ci.high < 0)


def test_a_claim_won_by_the_other_row_falling_says_so():
    """HACA above entail-only only because entail-only fell below the pretrained model: the sentence names it."""
    per_item = _runs({"pretrained": [0.8, 0.8, 0.8], "haca": [0.8, 0.8, 0.8], "entail": [0.2, 0.25, 0.2]})
    claims = claim_check(per_item, "test", "acc", [("HACA > entail", "haca", "entail", "bind")])
    c = claims.iloc[0]
    assert c.verdict == "supported"
    assert c.b_high < 0 and c.a_low <= 0 <= c.a_high
    assert c.moved.startswith("HACA above Entail-only FT because Entail-only FT fell below it; HACA is not above "
                              "the pretrained model.")
    assert "HACA is not distinguishable from the pretrained model" in c.moved
    assert "Entail-only FT fell below it" in claims_takeaway(claims)


def test_the_pretrained_row_has_no_difference_from_itself():
    per_item = _runs({"pretrained": [0.8, 0.8, 0.8], "haca": [0.5, 0.5, 0.5]})
    c = claim_check(per_item, "test", "acc", [("pretrained > HACA", "pretrained", "haca", "bind")]).iloc[0]
    assert np.isnan(c.a_minus_pretrained) and c.b_minus_pretrained < 0
    assert c.moved == ""  # the claim is itself the comparison with the pretrained row


def test_holm_reads_only_testable_claims_and_names_what_it_changed():
    claims = pd.DataFrame({"claim": list("abcd"), "kind": "greater", "difference": [3.0, 2.0, 1.0, 5.0],
                           "p_value": [0.001, 0.03, 0.04, 0.0001],
                           "verdict": ["supported", "supported", "supported", NOT_TESTABLE]})
    out = holm(claims)
    assert out["holm_verdict"].tolist() == ["supported", "inconclusive", "inconclusive", NOT_TESTABLE]
    assert out["holm_p"].iloc[:3].tolist() == pytest.approx([0.003, 0.06, 0.06]) and np.isnan(out["holm_p"].iloc[3])
    note = multiplicity_note(out)
    assert note.startswith("3 claims read at 95% each (3 supported or contradicted)") and "changes 2 verdicts" in note
