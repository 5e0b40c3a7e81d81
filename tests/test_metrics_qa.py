"""Offline QA judge: normalisation, exact match and whole-word containment on hand cases."""

import pytest

from hacalib.metrics import METRICS, contains_answer, exact_match, first_answer_match, first_answer_span, normalize_answer


@pytest.mark.parametrize(
    "raw,norm",
    [("The Man!", "man"), ("  A  dog. ", "dog"), ("an apple", "apple"), ("T-shirt", "t shirt"),
     ("There is a cat", "there is cat"), ("theatre", "theatre"), ("Two.", "two")],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


PREDS = ["The dog.", "a dog runs", "woman", "not", "I see ice cream", "ice and cream", "Two", "2"]
GOLDS = ["dog", "dog", "man", "no", "ice cream", "ice cream", "two", "two"]


def test_exact_match():
    assert exact_match(PREDS, GOLDS).tolist() == [1, 0, 0, 0, 0, 0, 1, 0]


def test_containment_is_whole_words():
    assert contains_answer(PREDS, GOLDS).tolist() == [1, 1, 0, 0, 1, 0, 1, 0]
    assert METRICS["qa_contains"](PREDS, GOLDS) == pytest.approx(4 / 8)
    assert METRICS["qa_exact"](PREDS, GOLDS) == pytest.approx(2 / 8)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="answer 1"):
        exact_match(["a", "b"], ["dog", "the"])
    with pytest.raises(ValueError, match="2 predictions for 1 answers"):
        contains_answer(["a", "b"], ["dog"])


def test_first_answer_judges_the_answer_given_not_the_run_on_text():
    """The case that made 'contains' favour HACA: a wrong first answer followed by a description holding the gold."""
    preds = ["three , there are two shapes .", "two , there are two shapes", "Two.\nmore", "the man's hat",
             "a dog runs", ", two", "circle; square"]
    golds = ["two", "two", "two", "man s hat", "dog", "two", "circle"]
    assert first_answer_match(preds, golds).tolist() == [0, 1, 1, 1, 1, 0, 1]
    # an answer phrased with a noun after it is the answer; the answer found later in the span is not
    assert first_answer_match(["one shape , the big", "shape one", "white square"], ["one", "one", "white"]).tolist() \
        == [1, 0, 1]
    assert contains_answer(preds[:1], golds[:1]).tolist() == [1]  # the judge it replaces as the headline
    assert first_answer_span("three , there are two") == "three "
    assert METRICS["qa_first_answer"](preds, golds) == pytest.approx(5 / 7)
