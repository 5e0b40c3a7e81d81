"""Content-word masking: only content words, the ratio, determinism; on real VideoCon captions."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from hacalib.training.masking import (
    CONTENT_POS,
    MASK_TOKEN,
    WordClassTagger,
    default_tagger,
    mask_caption,
    mask_captions,
    num_to_mask,
)

# Closed-class English words (determiners, pronouns, auxiliaries, conjunctions, prepositions that cannot be
# particles): whatever the tagger says, these must never be hidden. Words such as "in", "over", "by" are left
# out on purpose: as particles ("put back in", "falls over") the tagger rightly calls them ADV.
FUNCTION_WORDS = set(
    "a an the this these those of to from with into onto for and or but nor "
    "is are was were be been being am has have had do does did it its he she they them his her their him we "
    "you i my our your who which".split()
)


@pytest.fixture(scope="module")
def real_captions():
    from hacalib.samples import VIDEOCON_SAMPLE

    with open(VIDEOCON_SAMPLE, newline="", encoding="utf-8") as f:
        caps = list(dict.fromkeys(row["caption"] for row in csv.DictReader(f)))
    return caps[:400]


@pytest.fixture(scope="module")
def tagger():
    return default_tagger()


def _unmask(m) -> str:
    words = iter(m.masked_words)
    return re.sub(re.escape(MASK_TOKEN), lambda _: next(words), m.text)


def test_only_content_words_are_masked_on_real_captions(real_captions, tagger):
    masked = mask_captions(real_captions, 0.45, seed=0, tagger=tagger)
    tagged = tagger.tag(real_captions)
    n_hidden = 0
    for cap, m, words in zip(real_captions, masked, tagged):
        assert _unmask(m) == cap  # the mask replaces exactly the listed words, nothing else changes
        assert m.text.count(MASK_TOKEN) == len(m.masked_words) == num_to_mask(m.n_content, 0.45)
        assert all(words[i].pos in CONTENT_POS for i in m.positions)
        assert not {w.lower() for w in m.masked_words} & FUNCTION_WORDS, (cap, m.masked_words)
        n_hidden += len(m.masked_words)
    assert n_hidden > 1000  # the test really masked something


@pytest.mark.parametrize("ratio", [0.15, 0.3, 0.45, 0.6])
def test_masked_fraction_tracks_ratio(real_captions, tagger, ratio):
    masked = mask_captions(real_captions, ratio, seed=0, tagger=tagger)
    frac = np.array([len(m.masked_words) / m.n_content for m in masked if m.n_content])
    assert len(frac) > 0.95 * len(real_captions)
    assert abs(frac.mean() - ratio) < 0.04, (ratio, frac.mean(), frac.std())


def test_deterministic_and_order_free(real_captions, tagger):
    caps = real_captions[:50]
    a = mask_captions(caps, 0.45, seed=3, tagger=tagger)
    b = mask_captions(caps[::-1], 0.45, seed=3, tagger=tagger)[::-1]
    assert a == b
    assert mask_caption(caps[7], 0.45, seed=3, tagger=tagger) == a[7]
    c = mask_captions(caps, 0.45, seed=4, tagger=tagger)
    assert a != c


def test_rounding_rule():
    assert [num_to_mask(n, 0.45) for n in range(0, 11)] == [0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert num_to_mask(3, 0.0) == 0
    assert num_to_mask(4, 1.0) == 4
    assert num_to_mask(1, 0.01) == 1  # at least one when there is a content word
    with pytest.raises(ValueError):
        num_to_mask(3, 1.5)


def test_word_class_tagger_for_toy_captions():
    classes = {"a": "DET", "red": "ADJ", "circle": "NOUN", "moves": "VERB", "left": "ADV", "then": "ADV", "it": "PRON",
               "grows": "VERB", "the": "DET"}
    tagger = WordClassTagger(lambda w: classes[w.lower()])
    cap = "A red circle moves left, then it grows."
    m = mask_caption(cap, 1.0, seed=0, tagger=tagger)
    assert m.text == "A <mask> <mask> <mask> <mask>, <mask> it <mask>."
    assert m.masked_words == ("red", "circle", "moves", "left", "then", "grows")
    m = mask_caption(cap, 0.45, seed=0, tagger=tagger)
    assert len(m.masked_words) == 3 and m.n_content == 6 and _unmask(m) == cap


def test_toy_grammar_word_classes():
    from hacalib.toyworld.grammar import word_class

    cap = "there are two shapes. the small blue cross moves left slowly, then it moves down quickly."
    m = mask_caption(cap, 0.45, seed=0, tagger=WordClassTagger(word_class))
    # content: two shapes small blue cross moves left slowly then moves down quickly (12) -> 5 hidden
    assert m.n_content == 12 and len(m.masked_words) == 5 and _unmask(m) == cap
    assert not {"there", "are", "the", "it"} & set(m.masked_words)
