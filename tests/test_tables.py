import numpy as np
import pandas as pd
import pytest

from scipy import stats

from hacalib.report.claims import claim_check
from hacalib.report.tables import (
    collapse_report,
    collapsed_runs,
    format_cell,
    pivot,
    summarize_runs,
    velociti_per_item,
)


def _items(p_pos, p_neg, test="agent_bind"):
    return pd.DataFrame({"test": test, "p_pos": p_pos, "p_neg": p_neg})


def test_several_seeds_of_one_base_model_give_a_t_interval_over_seeds_and_items():
    per_item = {("haca", s): velociti_per_item(_items(pp, [0.5] * 4))
                for s, pp in enumerate([[0.9, 0.9, 0.1, 0.1], [0.9, 0.9, 0.9, 0.1], [0.9, 0.9, 0.9, 0.9]])}
    out = summarize_runs(per_item, "test", ["classic_vle"])
    line = out.iloc[0]
    assert line["value"] == pytest.approx(0.75)  # seeds give 0.5, 0.75, 1.0
    var_runs = np.var([0.5, 0.75, 1.0], ddof=1) / 3  # between seeds
    var_items = np.var([1, 1, 2 / 3, 1 / 3], ddof=1) / 4  # the four items' means over the seeds
    df = (var_runs + var_items) ** 2 / (var_runs ** 2 / 2 + var_items ** 2 / 3)  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * np.sqrt(var_runs + var_items)
    assert df == pytest.approx(4.948, abs=1e-3)
    assert line["ci_low"] == pytest.approx(0.75 - half) and line["ci_high"] == 1.0  # clipped to the metric's range
    assert line["ci"] == "t over seeds + items" and line["runs"] == 3 and line["bases"] == 1 and line["items"] == 4
    raw = summarize_runs(per_item, "test", ["classic_vle"], bounds=None).iloc[0]
    assert raw["ci_high"] == pytest.approx(0.75 + half)


def test_one_run_gets_a_t_interval_over_items_and_strict_thresholds_apply():
    per_item = {("pretrained", 0): velociti_per_item(_items([0.6, 0.6, 0.5, 0.9], [0.4, 0.55, 0.4, 0.5]))}
    out = summarize_runs(per_item, "test", ["classic_vle", "strict_vle"]).set_index("metric")
    assert out.loc["classic_vle", "value"] == pytest.approx(1.0)  # every pos > neg
    assert out.loc["classic_vle", "ci_low"] == 1.0  # every item equal: no spread
    assert out.loc["strict_vle", "value"] == pytest.approx(0.25)  # only the first: 0.5 and 0.55 fail
    assert out.loc["strict_vle", "ci"] == "t over items"
    half = stats.t.ppf(0.975, 3) * np.sqrt(0.25 / 4)  # items 1, 0, 0, 0: variance 0.25
    assert out.loc["strict_vle", "ci_low"] == 0.0 and out.loc["strict_vle", "ci_high"] == 1.0  # clipped
    raw = summarize_runs(per_item, "test", ["strict_vle"], bounds=None).iloc[0]
    assert raw["ci_low"] == pytest.approx(0.25 - half) and raw["ci_high"] == pytest.approx(0.25 + half)


def _two_rows(haca_by_base: dict[int, list[float]], entail: float = 0.5, items: int = 40):
    """Per-item frames whose every item equals the run's mean (so items add no spread: only runs count)."""
    def frame(mean):
        return pd.DataFrame({"test": "agent_bind", "acc": [mean] * items})
    per_item = {}
    for base, means in haca_by_base.items():
        for seed, m in enumerate(means):
            per_item[("haca", base, seed)] = frame(m)
            per_item[("entail", base, seed)] = frame(entail)
    return per_item


def test_a_claims_interval_widens_when_base_models_disagree():
    claim = [("HACA > entail on agent_bind", "haca", "entail", "agent_bind")]
    agree = claim_check(_two_rows({0: [0.60, 0.65], 1: [0.62, 0.67], 2: [0.58, 0.63]}), "test", "acc", claim).iloc[0]
    differ = claim_check(_two_rows({0: [0.80, 0.85], 1: [0.60, 0.65], 2: [0.40, 0.45]}), "test", "acc", claim).iloc[0]
    # the same mean difference (12.5 points) and the same seed spread within each base model
    assert agree["difference"] == pytest.approx(12.5) and differ["difference"] == pytest.approx(12.5)
    assert agree["bases_agreeing"] == "3 of 3" and differ["bases_agreeing"] == "2 of 3"
    assert agree["verdict"] == "supported" and differ["verdict"] == "inconclusive"
    assert differ["ci_high"] - differ["ci_low"] > 3 * (agree["ci_high"] - agree["ci_low"])
    # literal: base means of the difference 0.325, 0.125, -0.075 -> se_runs = 0.2 / sqrt(3); items add no spread
    # here, so df = 2 and t_{0.975, 2} = 4.303
    assert differ["ci_low"] == pytest.approx(12.5 - 4.302653 * 20 / np.sqrt(3), abs=1e-3)
    assert differ["ci"] == "t over base models + items" and differ["bases"] == 3 and differ["runs"] == 6


def test_the_pretrained_row_is_subtracted_within_its_own_base_model():
    per_item = {("pretrained", 0, 0): pd.DataFrame({"all": "all", "acc": [1.0, 1.0]}),
                ("pretrained", 1, 0): pd.DataFrame({"all": "all", "acc": [0.0, 0.0]}),
                ("haca", 0, 0): pd.DataFrame({"all": "all", "acc": [1.0, 0.0]}),
                ("haca", 0, 1): pd.DataFrame({"all": "all", "acc": [1.0, 1.0]}),
                ("haca", 1, 0): pd.DataFrame({"all": "all", "acc": [0.0, 0.0]}),
                ("haca", 1, 1): pd.DataFrame({"all": "all", "acc": [1.0, 0.0]})}
    from hacalib.report.claims import run_differences

    d = run_differences(per_item, "haca", "pretrained", "all", "all", "acc")
    assert {k: v.tolist() for k, v in d.items()} == {(0, 0): [0.0, -1.0], (0, 1): [0.0, 0.0],
                                                     (1, 0): [0.0, 0.0], (1, 1): [1.0, 0.0]}
    out = claim_check(per_item, "all", "acc", [("pretrained > HACA", "pretrained", "haca", "all")]).iloc[0]
    assert out["difference"] == pytest.approx(0.0) and out["bases_agreeing"] == "1 of 2"


def test_collapsed_runs_are_left_out_and_never_shown_as_numbers():
    const = velociti_per_item(_items([0.5] * 4, [0.5] * 4))
    good = velociti_per_item(_items([0.9] * 4, [0.1] * 4))
    per_item = {("entail", 0): const, ("entail", 1): const, ("haca", 0): good, ("haca", 1): const}
    runs = {k: np.r_[df["classic_vle"] * 0 + 0.5] for k, df in per_item.items()}
    runs[("haca", 0)] = np.array([0.9, 0.1, 0.8, 0.2])
    collapsed = collapsed_runs(collapse_report(runs))
    assert collapsed == {("entail", 0, 0), ("entail", 0, 1), ("haca", 0, 1)}
    out = summarize_runs(per_item, "test", ["classic_vle"], collapsed=collapsed).set_index("row")
    assert np.isnan(out.loc["entail", "value"]) and out.loc["entail", "collapsed_runs"] == 2
    assert out.loc["haca", "value"] == 1.0 and out.loc["haca", "runs"] == 1
    table = pivot(out.reset_index(), "test", "classic_vle")
    assert table.set_index("model").loc["Entail-only FT", "agent_bind"] == "collapsed"


def test_format_cell():
    assert format_cell(0.6123, 0.58, 0.643) == "61.2 [58.0, 64.3]"
    assert format_cell(0.5, np.nan, np.nan) == "50.0"


def test_summarize_with_overall_puts_the_pooled_rows_under_the_group_value_all():
    from hacalib.report.tables import summarize_with_overall

    per_item = {("haca", s): pd.DataFrame({"misalignment": ["flip", "flip", "attribute", "attribute"],
                                           "acc": [1.0, 0.0, 1.0, float(s)]}) for s in (0, 1)}
    out = summarize_with_overall(per_item, "misalignment", ["acc"])
    assert out["misalignment"].tolist() == ["flip", "attribute", "all"] and "all" not in out.columns
    assert out["value"].tolist() == pytest.approx([0.5, 0.75, 0.625])
    assert list(pivot(out, "misalignment", "acc").columns) == ["model", "flip", "attribute", "all"]


def test_runs_of_two_families_are_summarised_and_tested_each_on_its_own():
    """Keys (family, row, base, seed): each family's lines equal its runs summarised alone; never pooled."""
    good = velociti_per_item(_items([0.9, 0.9, 0.2, 0.9], [0.1, 0.5, 0.4, 0.3]))
    poor = velociti_per_item(_items([0.1, 0.9, 0.2, 0.3], [0.5, 0.5, 0.4, 0.6]))
    const = velociti_per_item(_items([0.5] * 4, [0.5] * 4))
    alone = {"video_llava": {("entail", 0, 0): poor, ("haca", 0, 0): good, ("entail", 1, 0): poor,
                             ("haca", 1, 0): good},
             "videochat2": {("entail", 0, 0): good, ("haca", 0, 0): const, ("entail", 1, 0): good,
                            ("haca", 1, 0): poor}}
    per_item = {(f, *k): df for f, runs in alone.items() for k, df in runs.items()}
    spreads = {k: np.r_[0.5, 0.5] if df is const else np.r_[0.1, 0.9] for k, df in per_item.items()}
    report = collapse_report(spreads)
    assert list(report.columns[:2]) == ["family", "row"]
    collapsed = collapsed_runs(report)
    assert collapsed == {("videochat2", "haca", 0, 0)}  # only the other family's run of the same key

    both = summarize_runs(per_item, "test", ["classic_vle"], collapsed=collapsed)
    assert list(both.columns[:2]) == ["family", "row"]
    for family, runs in alone.items():
        mine = {("videochat2", "haca", 0, 0)} if family == "videochat2" else set()
        own = summarize_runs(runs, "test", ["classic_vle"], collapsed={k[1:] for k in mine})
        pd.testing.assert_frame_equal(both[both["family"] == family].drop(columns="family").reset_index(drop=True),
                                      own)
    table = pivot(both, "test", "classic_vle")
    assert list(table.columns[:2]) == ["family", "model"]
    assert table["family"].tolist() == ["Video-LLaVA", "Video-LLaVA", "VideoChat2", "VideoChat2"]

    claims = claim_check(per_item, "test", "classic_vle", [("HACA > entail", "haca", "entail", "agent_bind")],
                         collapsed=collapsed)
    assert claims["claim"].tolist() == ["Video-LLaVA: HACA > entail", "VideoChat2: HACA > entail"]
    assert claims["difference"].iloc[0] > 0 > claims["difference"].iloc[1]  # opposite signs, kept apart
    assert claims["runs"].tolist() == [2, 1]  # the collapsed run is left out of its own family only


def test_strict_vle_chance_follows_the_rows_own_pyes():
    from hacalib.report.tables import velociti_per_item

    items = _items([0.9, 0.4, 0.6, 0.3], [0.2, 0.45, 0.7, 0.8])
    per = velociti_per_item(items)
    # one value above 0.5 and one below: a coin flip is right half the time; both on one side: never
    assert per["strict_vle_chance"].tolist() == [0.5, 0.0, 0.0, 0.5]


def test_chance_row_and_collapse_line():
    from hacalib.report.tables import collapse_line, with_chance_row

    table = pd.DataFrame({"family": ["Video-LLaVA"], "model": ["HACA"], "map": ["20.0 [10.0, 30.0]"], "R@1": ["1"]})
    out = with_chance_row(table, {"map": 0.161}, label="random ranking")
    assert out.iloc[-1].tolist() == ["all", "random ranking", "16.1", ""]
    report = collapse_report({("haca", 0, 0): np.array([0.2, 0.7]), ("entail", 0, 0): np.array([0.5, 0.5])})
    assert collapse_line(report) == ("1 of 2 runs collapsed (P(yes) constant) and are left out: Entail-only FT base 0 "
                                     "seed 0. Highest P(yes) per row: HACA 0.70, Entail-only FT 0.50.")
