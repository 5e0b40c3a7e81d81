"""Offline QA judges for one-word answers (MSRVTT-QA): first answer span, normalised exact match, containment.

The headline judge is `first_answer_match`: the prediction is cut at its first sentence punctuation mark or line
break, and that first span must begin with the answer (normalised, whole words: "one shape" answers "one"). A model
fine-tuned to write corrections goes on after its answer ("three , there are two shapes"); containment would credit
the "two" of the run-on text although the answer given is "three", and whole-prediction exact match would punish
the run-on text although the answer given is right. The first span judges the answer the model gave, and only it
(PROTOCOL.md, "QA judge").

Normalisation (as SQuAD's evaluation script): lowercase, punctuation removed, the articles a/an/the
dropped, whitespace collapsed. Containment asks whether the normalised answer occurs in the normalised
prediction as whole words, so "no" is not found inside "not" and "man" not inside "woman". Digits and
number words are not unified ("2" != "two"): MSRVTT-QA answers are words.

May import: numpy.
"""

from __future__ import annotations

import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# where a first answer ends: sentence punctuation or a line break (not apostrophes or hyphens inside a word)
_SPAN_END = re.compile(r"[\n\r.,;:!?]")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lowercase, replace punctuation by spaces, drop articles, collapse whitespace."""
    text = str(text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _pairs(predictions, answers) -> list[tuple[list[str], list[str]]]:
    predictions, answers = list(predictions), list(answers)
    if len(predictions) != len(answers) or not answers:
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answers: need equal, non-zero counts")
    out = []
    for i, (p, a) in enumerate(zip(predictions, answers)):
        gold = normalize_answer(a).split()
        if not gold:
            raise ValueError(f"answer {i} ({a!r}) is empty after normalisation")
        out.append((normalize_answer(p).split(), gold))
    return out


def exact_match(predictions, answers) -> np.ndarray:
    """Per item 1.0 where the normalised prediction equals the normalised answer."""
    return np.array([float(p == g) for p, g in _pairs(predictions, answers)])


def contains_answer(predictions, answers) -> np.ndarray:
    """Per item 1.0 where the normalised answer's words occur contiguously in the normalised prediction."""
    out = []
    for p, g in _pairs(predictions, answers):
        n = len(g)
        out.append(float(any(p[i : i + n] == g for i in range(len(p) - n + 1))))
    return np.array(out)


def first_answer_span(prediction: str) -> str:
    """The prediction up to its first sentence punctuation mark or line break ("three , there are two" -> "three ")."""
    return _SPAN_END.split(str(prediction), maxsplit=1)[0]


def first_answer_match(predictions, answers) -> np.ndarray:
    """Per item 1.0 where the normalised first answer span begins with the normalised answer, as whole words (the
    headline QA judge): "one shape" and "one" answer "one"; "three , there are two shapes" does not answer "two"."""
    return np.array([float(p[: len(g)] == g) for p, g in _pairs([first_answer_span(p) for p in predictions], answers)])
