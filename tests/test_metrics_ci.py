"""Confidence intervals, the collapse check and the registry's contract."""

import math

import numpy as np
import pandas as pd
import pytest

from hacalib.metrics import (
    METRICS,
    Metric,
    bootstrap_ci,
    is_collapsed,
    pyes_spread,
    score_table,
    summarize_seeds,
    t_interval,
)


def test_t_interval_hand_computed():
    # mean 2, sem 1/sqrt(3), t_{0.975, 2} = 4.302653
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half), abs=1e-5)
    assert t_interval([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4, 0.4))
    m, lo, hi = t_interval([0.3])
    assert m == 0.3 and math.isnan(lo) and math.isnan(hi)


def test_bootstrap_is_seeded_and_sized_right():
    x = (np.random.default_rng(0).random(400) < 0.7).astype(float)
    a, b = bootstrap_ci(x, seed=3), bootstrap_ci(x, seed=3)
    assert a == b and bootstrap_ci(x, seed=4) != a
    assert a[0] < x.mean() < a[1]
    normal_half = 1.96 * math.sqrt(x.mean() * (1 - x.mean()) / x.size)
    assert (a[1] - a[0]) / 2 == pytest.approx(normal_half, rel=0.15)


def test_bootstrap_degenerate_cases():
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))


def test_summarize_seeds_tidy():
    df = pd.DataFrame({"row": ["haca"] * 3 + ["entail"] * 3, "metric": "classic_vle", "seed": [0, 1, 2] * 2,
                       "value": [0.6, 0.7, 0.8, 0.5, 0.5, 0.5]})
    out = summarize_seeds(df)
    assert list(out.columns) == ["row", "metric", "value", "ci_low", "ci_high", "n", "std"]
    assert out["row"].tolist() == ["haca", "entail"]  # first-seen order
    haca = out.iloc[0]
    assert haca["value"] == pytest.approx(0.7) and haca["n"] == 3 and haca["std"] == pytest.approx(0.1)
    assert haca["ci_high"] - 0.7 == pytest.approx(4.302653 * 0.1 / math.sqrt(3), abs=1e-5)
    assert out.iloc[1][["value", "ci_low", "ci_high"]].tolist() == pytest.approx([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="not in table"):
        summarize_seeds(df, value="score")


def test_collapse_check():
    assert pyes_spread([0.7, 0.7, 0.7]) == {"std": 0.0, "min": 0.7, "max": 0.7, "n_unique": 1, "n": 3}
    assert is_collapsed([0.7, 0.7, 0.7])
    assert is_collapsed(0.7 + 1e-7 * np.random.default_rng(0).standard_normal(100))  # float noise only
    assert not is_collapsed([0.1, 0.9, 0.5])
    assert not is_collapsed([0.70, 0.72, 0.69, 0.75])  # a weak but input-dependent model
    with pytest.raises(ValueError, match="not finite"):
        pyes_spread([0.1, float("nan")])


def test_registry_contract():
    for name, metric in METRICS.items():
        assert isinstance(metric, Metric) and metric.name == name and metric.help
        assert metric.higher_is_better is True  # every metric here is an accuracy-like score
    r = METRICS["classic_vle"].with_ci([0.9, 0.6, 0.8, 0.2], [0.1, 0.7, 0.3, 0.1], seed=0)
    assert set(r) == {"metric", "value", "ci_low", "ci_high", "n", "higher_is_better"}
    assert r["metric"] == "classic_vle" and r["value"] == 0.75 and r["n"] == 4
    assert 0.0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1.0


def test_score_table_per_test():
    groups = {"agent_bind": ([0.9, 0.6, 0.5], [0.1, 0.6, 0.4]), "control": ([0.8, 0.7], [0.2, 0.9])}
    t = score_table(groups, ["classic_vle", "strict_vle"], seed=1)
    assert list(t.columns) == ["test", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better"]
    assert t[["test", "metric"]].values.tolist() == [
        ["agent_bind", "classic_vle"], ["agent_bind", "strict_vle"],
        ["control", "classic_vle"], ["control", "strict_vle"]]
    assert t["value"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 2, 1 / 2])
    assert t["n"].tolist() == [3, 3, 2, 2]
    with pytest.raises(KeyError, match="unknown metric"):
        score_table(groups, ["accuracy"])
