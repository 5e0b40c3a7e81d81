"""Failure-analysis tables on literal per-item frames."""

import numpy as np
import pandas as pd
import pytest

from hacalib.report.analysis import readout_per_item


def _pairs():
    return pd.DataFrame({"misalignment": ["flip", "flip", "attribute"], "video": ["a.mp4", "b.mp4", "c.mp4"],
                         "neg_caption": ["x", "y", "z"], "p_true": [0.6, 0.4, 0.5], "p_false": [0.5, 0.7, 0.5]})


def _logliks(**override):
    cols = {"video": ["a.mp4", "b.mp4", "c.mp4"], "neg_caption": ["x", "y", "z"],
            "ll_true": [-3.0, -2.0, -5.0], "ll_false": [-4.0, -2.5, -5.0],
            "ll_true_other": [-6.0, -1.0, -2.0], "ll_false_other": [-5.0, -3.0, -2.0]}
    return pd.DataFrame({**cols, **override})


def test_readouts_compare_true_and_contrast_caption_per_item_ties_wrong():
    out = readout_per_item(_pairs(), _logliks())
    assert out["misalignment"].tolist() == ["flip", "flip", "attribute"]
    assert out["p_yes"].tolist() == [1.0, 0.0, 0.0]  # the P(yes) tie of item 3 counts as wrong
    assert out["loglik"].tolist() == [1.0, 1.0, 0.0]
    assert out["loglik_other_video"].tolist() == [0.0, 1.0, 0.0]


def test_readouts_refuse_items_that_do_not_line_up_or_are_not_finite():
    with pytest.raises(ValueError, match="same held-out items"):
        readout_per_item(_pairs(), _logliks(video=["a.mp4", "c.mp4", "b.mp4"]))
    with pytest.raises(ValueError, match="same held-out items"):
        readout_per_item(_pairs(), _logliks().iloc[:2])
    with pytest.raises(ValueError, match=r"ll_false_other.*item 1"):
        readout_per_item(_pairs(), _logliks(ll_false_other=[-5.0, np.nan, -2.0]))
