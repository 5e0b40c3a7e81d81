import numpy as np
import pandas as pd
import pytest

from hacalib.report.tables import collapse_report, collapsed_runs, format_cell, pivot, summarize_runs, velociti_per_item


def _items(p_pos, p_neg, test="agent_bind"):
    return pd.DataFrame({"test": test, "p_pos": p_pos, "p_neg": p_neg})


def test_several_seeds_give_a_t_interval_over_per_seed_means():
    per_item = {("haca", s): velociti_per_item(_items(pp, [0.5] * 4))
                for s, pp in enumerate([[0.9, 0.9, 0.1, 0.1], [0.9, 0.9, 0.9, 0.1], [0.9, 0.9, 0.9, 0.9]])}
    out = summarize_runs(per_item, "test", ["classic_vle"])
    line = out.iloc[0]
    assert line["value"] == pytest.approx(0.75)  # seeds give 0.5, 0.75, 1.0
    half = 4.302652729911275 * 0.25 / np.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert line["ci_low"] == pytest.approx(0.75 - half) and line["ci_high"] == 1.0  # clipped to the metric's range
    assert line["ci"] == "t over seeds" and line["seeds"] == 3 and line["items"] == 4
    raw = summarize_runs(per_item, "test", ["classic_vle"], bounds=None).iloc[0]
    assert raw["ci_high"] == pytest.approx(0.75 + half)


def test_one_seed_gets_a_bootstrap_over_items_and_strict_thresholds_apply():
    per_item = {("pretrained", 0): velociti_per_item(_items([0.6, 0.6, 0.5, 0.9], [0.4, 0.55, 0.4, 0.5]))}
    out = summarize_runs(per_item, "test", ["classic_vle", "strict_vle"]).set_index("metric")
    assert out.loc["classic_vle", "value"] == pytest.approx(1.0)  # every pos > neg
    assert out.loc["strict_vle", "value"] == pytest.approx(0.25)  # only the first: 0.5 and 0.55 fail
    assert out.loc["strict_vle", "ci"] == "bootstrap over items"
    assert 0.0 <= out.loc["strict_vle", "ci_low"] <= 0.25 <= out.loc["strict_vle", "ci_high"] <= 1.0


def test_collapsed_runs_are_left_out_and_never_shown_as_numbers():
    const = velociti_per_item(_items([0.5] * 4, [0.5] * 4))
    good = velociti_per_item(_items([0.9] * 4, [0.1] * 4))
    per_item = {("entail", 0): const, ("entail", 1): const, ("haca", 0): good, ("haca", 1): const}
    runs = {k: np.r_[df["classic_vle"] * 0 + 0.5] for k, df in per_item.items()}
    runs[("haca", 0)] = np.array([0.9, 0.1, 0.8, 0.2])
    collapsed = collapsed_runs(collapse_report(runs))
    assert collapsed == {("entail", 0), ("entail", 1), ("haca", 1)}
    out = summarize_runs(per_item, "test", ["classic_vle"], collapsed=collapsed).set_index("row")
    assert np.isnan(out.loc["entail", "value"]) and out.loc["entail", "collapsed_runs"] == 2
    assert out.loc["haca", "value"] == 1.0 and out.loc["haca", "seeds"] == 1
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
