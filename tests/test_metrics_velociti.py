"""ClassicVLE / StrictVLE on hand-computed pairs, including exact ties and the 0.5 threshold."""

import numpy as np
import pytest

from hacalib.metrics import METRICS, classic_vle, strict_vle

# item: 0 clear win, 1 exact tie, 2 pos exactly 0.5, 3 neg exactly 0.5, 4 both low but ordered
P_POS = [0.9, 0.6, 0.5, 0.7, 0.3]
P_NEG = [0.1, 0.6, 0.4, 0.5, 0.2]


def test_classic_vle_ties_count_as_wrong():
    assert classic_vle(P_POS, P_NEG).tolist() == [1, 0, 1, 1, 1]
    assert METRICS["classic_vle"](P_POS, P_NEG) == pytest.approx(0.8)


def test_strict_vle_thresholds_are_strict():
    # only item 0 has P(pos) > 0.5 and P(neg) < 0.5; 0.5 itself fails on either side
    assert strict_vle(P_POS, P_NEG).tolist() == [1, 0, 0, 0, 0]
    assert METRICS["strict_vle"](P_POS, P_NEG) == pytest.approx(0.2)


def test_strict_is_never_above_classic_when_classic_fails_only_on_order():
    rng = np.random.default_rng(0)
    a, b = rng.random(500), rng.random(500)
    strict, classic = strict_vle(a, b), classic_vle(a, b)
    assert (strict <= classic).all()  # strict success implies pos > 0.5 > neg, hence pos > neg
    assert strict.mean() == pytest.approx(((a > 0.5) & (b < 0.5)).mean())


def test_collapsed_model_scores_zero_classic():
    assert METRICS["classic_vle"]([0.7] * 4, [0.7] * 4) == 0.0


@pytest.mark.parametrize(
    "pos,neg,msg",
    [([0.5, 1.2], [0.1, 0.2], r"p_pos\[1\]"), ([0.5], [np.nan], r"p_neg\[0\]"),
     ([0.5, 0.4], [0.1], "equal"), ([], [], "non-empty")],
)
def test_bad_pairs_raise(pos, neg, msg):
    with pytest.raises(ValueError, match=msg):
        classic_vle(pos, neg)
