"""The toy grammar, the truth checker and the hallucination generators, on sampled scenes."""

from __future__ import annotations

import numpy as np
import pytest

from hacalib.toyworld import hallucinate as H
from hacalib.toyworld.grammar import (
    Description,
    describe,
    parse,
    realize,
    resolve,
    tokenize,
    vocabulary,
    word_class,
)
from hacalib.toyworld.scene import MAX_AGENTS, sample_scene
from hacalib.toyworld.truth import entails

SAMPLED = [0, 2, 4, 6, 8, 10, 12, 14]


def scenes(n: int, seed: int = 0, **kw):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        na = kw.get("n_agents", 1 + len(out) % 3)
        ne = kw.get("n_events", 1 + (len(out) // 3) % 3)
        s = sample_scene(rng, canvas=32, num_frames=16, sampled=SAMPLED, n_agents=na, n_events=ne)
        if s is not None:
            out.append(s)
    return out


SCENES = scenes(90)


def test_true_caption_is_true_and_parses_back():
    for s in SCENES:
        d = describe(s)
        assert entails(s, d)
        assert parse(realize(d)) == d
        assert all(w in vocabulary() for w in tokenize(realize(d)))


def test_pronoun_means_previous_subject():
    s = next(s for s in SCENES if len(s.events) > 1 and s.events[0].agent == s.events[1].agent)
    text = realize(describe(s))
    assert ", then it " in text
    assert resolve(describe(s))[1].subject == resolve(describe(s))[0].subject


def test_checker_rejects_wrong_count_and_wrong_order():
    for s in SCENES:
        d = describe(s)
        assert not entails(s, Description(d.clauses, d.count + 1))
        if len(s.events) > 1:
            assert not entails(s, Description(tuple(reversed(resolve(d)))))


def test_word_classes_cover_the_vocabulary():
    assert word_class("circle") == "NOUN" and word_class("quickly") == "ADV" and word_class("Red") == "ADJ"
    assert word_class("it") == "PRON" and word_class("two") == "NUM" and word_class(".") == "PUNCT"
    assert {word_class(w) for w in vocabulary()} <= {
        "NOUN", "VERB", "ADJ", "ADV", "NUM", "DET", "ADP", "PRON", "AUX", "INTJ", "PUNCT"}
    with pytest.raises(KeyError):
        word_class("dog")


def _diff(a: str, b: str) -> list[tuple[str, str]]:
    ta, tb = tokenize(a), tokenize(b)
    assert len(ta) == len(tb), (a, b)
    return [(x, y) for x, y in zip(ta, tb) if x != y]


@pytest.mark.parametrize("kind", H.MISALIGNMENT_TYPES)
def test_each_hallucination_changes_exactly_what_it_claims(kind):
    rng = np.random.default_rng(1)
    made = 0
    for s in SCENES:
        d = describe(s)
        n = H.HALLUCINATIONS[kind](s, d, rng)
        if n is None:
            continue
        made += 1
        assert not entails(s, n), (kind, realize(d), realize(n))
        assert parse(realize(n)) == n
        pos, neg = realize(d), realize(n)
        present = s.agent_keys()
        if kind in ("object", "attribute"):
            (old, new), = _diff(pos, neg)  # exactly one word
            assert word_class(old) == word_class(new) == ("NOUN" if kind == "object" else "ADJ")
            assert n.count == d.count and len(n.clauses) == len(d.clauses)
            assert any(c.subject is not None and c.subject.key not in present or
                       c.target is not None and c.target.key not in present for c in n.clauses)
        elif kind == "action":
            changed = [(a, b) for a, b in zip(d.clauses, n.clauses) if a != b]
            (a, b), = changed
            assert (a.subject, a.adverb, a.relation, a.target) == (b.subject, b.adverb, b.relation, b.target)
            assert b.action not in {e.action for e in s.events}  # nobody does it: never a binding/coref error
        elif kind == "relation":
            (old, new), = {(a.relation, b.relation) for a, b in zip(d.clauses, n.clauses) if a != b}
            assert {old, new} == {"towards", "away from"}
        elif kind == "hallucination":  # one clause replaced: the caption keeps its number of clauses
            assert len(n.clauses) == len(d.clauses) and n.count == d.count
            changed = [k for k, (a, b) in enumerate(zip(d.clauses, n.clauses)) if a != b]
            assert len(changed) == 1 and n.clauses[changed[0]].subject.key not in present
            k = changed[0]
            assert k + 1 == len(d.clauses) or d.clauses[k + 1].subject is not None  # no "it" re-bound
        elif kind == "counting":  # a count the text allows: no fewer than the shapes named, none no video has
            assert n.clauses == d.clauses and n.count != d.count
            assert H.named_agents(d) <= n.count <= MAX_AGENTS
        elif kind == "flip":
            a, b = resolve(d), resolve(n)
            assert sorted(map(repr, a)) == sorted(map(repr, b)) and a != b and n.count == d.count
            swapped = [k for k in range(len(a)) if a[k] != b[k]]
            assert len(swapped) == 2 and a[swapped[0]] == b[swapped[1]] and a[swapped[1]] == b[swapped[0]]
    assert made >= 20, f"{kind}: only {made} of {len(SCENES)} scenes allowed it"


def test_velociti_negatives_false_positives_true_and_coref_shape():
    rng = np.random.default_rng(2)
    count = {}
    for s in scenes(60, seed=3, n_agents=2, n_events=3):
        for k in range(len(s.events)):
            for name in ("agent_iden", "agent_bind", "action_bind", "action_mod", "action_adv"):
                pair = getattr(H, name)(s, k, rng)
                if pair:
                    count[name] = count.get(name, 0) + 1
                    assert entails(s, pair[0]) and not entails(s, pair[1])
        for i in range(3):
            for j in range(i + 1, 3):
                for name in ("coref", "sequence"):
                    pair = getattr(H, name)(s, i, j, rng)
                    if pair:
                        count[name] = count.get(name, 0) + 1
                        assert entails(s, pair[0]) and not entails(s, pair[1])
                        if name == "coref":
                            pos, neg = pair
                            assert pos.clauses[1].subject is None and neg.clauses[1].subject is None
                            assert pos.clauses[0] == neg.clauses[0]
    assert all(count.get(t, 0) >= 5 for t in H.VELOCITI_TESTS if t != "control"), count


@pytest.mark.parametrize("bad", ["the big red circle", "the big red dog moves left quickly.", "it grows slowly."])
def test_parse_rejects_text_outside_the_grammar(bad):
    with pytest.raises(ValueError):
        parse(bad)
