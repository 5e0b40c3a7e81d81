"""How good a written correction is: measured only where the model said No, against copying the contrast caption.

A HACA model shown a contrast caption should answer "No, <true caption>". Per held-out item:

- `says_no`: the answer's first word is "no" (every item counts; a model that says Yes wrote no correction);
- `exact`: the correction is the true caption (normalised words);
- `recovered`: every span of the true caption that the contrast caption changed (difflib over words: a replaced
  object or action, a swapped order) appears in the correction, and the correction is not the contrast caption;
- `overlap_true`: the share of the true caption's words (multiset) found in the correction;
- `overlap_copy`: the same share for the contrast caption itself, what copying the question back would score.

The last four are NaN where the model said Yes: averaging them over every item would mix the share of No answers
into the quality of the corrections.

May import: numpy.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

import numpy as np

_WORDS = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lowercase words, punctuation dropped."""
    return _WORDS.findall(str(text).lower())


def says_no(answer: str) -> bool:
    """Whether an answer to the entailment question starts with the word "no" ("No, ..." but not "Nothing ...")."""
    first = words(answer)[:1]
    return first == ["no"]


def correction_text(answer: str) -> str:
    """The correction inside an answer: the text after a leading "No" and its punctuation ("" for any other answer)."""
    if not says_no(answer):
        return ""
    return str(answer).strip()[2:].lstrip(" ,.:;-").strip()


def word_overlap(text: str, reference: str) -> float:
    """Share of `reference`'s words (multiset) that also occur in `text` (0.0 for an empty reference)."""
    have, want = Counter(words(text)), Counter(words(reference))
    total = sum(want.values())
    return sum(min(n, have[w]) for w, n in want.items()) / total if total else 0.0


def changed_spans(caption: str, contrast: str) -> list[list[str]]:
    """The word spans of `caption` that `contrast` replaced or dropped (difflib opcodes over words), in order. A
    contrast that only inserts words changes no span of the caption: the list is empty then."""
    a, b = words(caption), words(contrast)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return [a[i1:i2] for tag, i1, i2, _, _ in ops if tag in ("replace", "delete")]


def _holds(sequence: list[str], span: list[str]) -> bool:
    n = len(span)
    return any(sequence[i:i + n] == span for i in range(len(sequence) - n + 1))


def recovers_change(correction: str, caption: str, contrast: str) -> bool:
    """Whether the correction restores what the contrast caption changed: every changed span of the true caption
    appears in it, and it is not the contrast caption again."""
    fixed = words(correction)
    if not fixed or fixed == words(contrast):
        return False
    return all(_holds(fixed, span) for span in changed_spans(caption, contrast))


def correction_measures(answer: str, caption: str, contrast: str) -> dict[str, float]:
    """The per-item measures of the module docstring for one answer to one contrast caption."""
    no = says_no(answer)
    if not no:
        return {"says_no": 0.0, "exact": np.nan, "recovered": np.nan, "overlap_true": np.nan, "overlap_copy": np.nan}
    fix = correction_text(answer)
    return {"says_no": 1.0, "exact": float(bool(words(fix)) and words(fix) == words(caption)),
            "recovered": float(recovers_change(fix, caption, contrast)),
            "overlap_true": word_overlap(fix, caption), "overlap_copy": word_overlap(contrast, caption)}
