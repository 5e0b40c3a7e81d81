"""Edits of a true description: VideoCon's seven misalignment types and VELOCITI's negatives.

Every function works on the structured `Description` of a scene and returns None where the scene does
not allow the edit (e.g. no relation to change, one event only for a flip). Each result is checked to be
false of the scene with the symbolic checker (`truth.entails`), so a generator can never emit a
"hallucination" that happens to be true.

Training types (toy VideoCon) never re-bind a pronoun or borrow another agent's action: a replaced
action is one that nobody in the video performs, and a replaced shape names no shape in the video.
So the coreference error of VELOCITI's `coref` test (and the within-video swaps of the binding tests)
appear only in the test data, as in the paper.

May import: numpy, its own package's modules.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .grammar import NP, Clause, Description, clause_of, np_of, pronominalize, resolve
from .scene import ACTIONS, ADVERBS, COLORS, MAX_AGENTS, RELATIONS, SHAPES, SIZES, Scene
from .truth import entails

MISALIGNMENT_TYPES = ("object", "action", "attribute", "relation", "hallucination", "counting", "flip")
VELOCITI_TESTS = ("agent_iden", "agent_bind", "action_bind", "action_mod", "action_adv", "coref", "sequence", "control")

Generator = Callable[[Scene, Description, np.random.Generator], "Description | None"]


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))] if items else None


def _false_or_none(scene: Scene, desc: Description | None) -> Description | None:
    return desc if desc is not None and not entails(scene, desc) else None


def mentions(desc: Description) -> list[tuple[int, str]]:
    """Explicit noun-phrase positions: (clause index, "subject" | "target")."""
    out = []
    for i, c in enumerate(desc.clauses):
        if c.subject is not None:
            out.append((i, "subject"))
        if c.target is not None:
            out.append((i, "target"))
    return out


def _get(desc: Description, pos: tuple[int, str]) -> NP:
    return getattr(desc.clauses[pos[0]], pos[1])


def _set(desc: Description, pos: tuple[int, str], np_: NP) -> Description:
    clauses = list(desc.clauses)
    clauses[pos[0]] = replace(clauses[pos[0]], **{pos[1]: np_})
    return replace(desc, clauses=tuple(clauses))


def absent_agents(scene: Scene) -> list[NP]:
    """Every noun phrase that names no shape of the scene, in a fixed order."""
    present = scene.agent_keys()
    return [NP(z, c, s) for s in SHAPES for c in COLORS for z in SIZES if (z, c, s) not in present]


def unperformed_actions(scene: Scene, moves_only: bool = False) -> list[str]:
    """Actions no agent of the scene performs (with any adverb)."""
    done = {e.action for e in scene.events}
    return [a for a in ACTIONS if a not in done and (not moves_only or a.startswith("move_"))]


# ----------------------------------------------------------------------------- VideoCon's seven types


def hallucinate_object(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Replace the shape noun of one noun phrase, so that it names a shape absent from the video."""
    pos = _pick(rng, mentions(desc))
    if pos is None:
        return None
    old = _get(desc, pos)
    present = scene.agent_keys()
    alts = [s for s in SHAPES if s != old.shape and (old.size, old.color, s) not in present]
    new = _pick(rng, alts)
    return _false_or_none(scene, _set(desc, pos, replace(old, shape=new)) if new else None)


def hallucinate_attribute(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Replace the colour word or the size word of one noun phrase (naming an absent shape)."""
    pos = _pick(rng, mentions(desc))
    if pos is None:
        return None
    old = _get(desc, pos)
    present = scene.agent_keys()
    colors = [replace(old, color=c) for c in COLORS if c != old.color]
    sizes = [replace(old, size=z) for z in SIZES if z != old.size]
    kinds = [[n for n in group if n.key not in present] for group in (colors, sizes)]
    kinds = [k for k in kinds if k]
    new = _pick(rng, _pick(rng, kinds) or [])
    return _false_or_none(scene, _set(desc, pos, new) if new else None)


def hallucinate_action(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Replace the action of one clause by an action nobody in the video performs (adverb kept)."""
    i = _pick(rng, list(range(len(desc.clauses))))
    if i is None:
        return None
    c = desc.clauses[i]
    # a stated relation ("towards ...") only makes sense with a move
    new = _pick(rng, unperformed_actions(scene, moves_only=c.relation is not None))
    if new is None:
        return None
    clauses = list(desc.clauses)
    clauses[i] = replace(c, action=new)
    return _false_or_none(scene, replace(desc, clauses=tuple(clauses)))


def hallucinate_relation(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Turn one stated relation into its opposite ("towards" <-> "away from")."""
    i = _pick(rng, [k for k, c in enumerate(desc.clauses) if c.relation is not None])
    if i is None:
        return None
    c = desc.clauses[i]
    other = [r for r in RELATIONS if r != c.relation][0]
    clauses = list(desc.clauses)
    clauses[i] = replace(c, relation=other)
    return _false_or_none(scene, replace(desc, clauses=tuple(clauses)))


def hallucinate_hallucination(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Replace one clause by a clause about a shape that is not in the video (never a clause whose subject a later
    "it" refers to). Replaced, not inserted: an inserted clause makes the caption longer, and a longer caption has a
    lower log-likelihood on any video, so the text alone gave the contrast away (PROTOCOL.md, "The toy world")."""
    who = _pick(rng, absent_agents(scene))
    spots = [k for k, c in enumerate(desc.clauses)
             if c.subject is not None and (k + 1 == len(desc.clauses) or desc.clauses[k + 1].subject is not None)]
    k = _pick(rng, spots)
    if who is None or k is None:
        return None
    clause = Clause(who, ACTIONS[int(rng.integers(len(ACTIONS)))], ADVERBS[int(rng.integers(len(ADVERBS)))])
    clauses = desc.clauses[:k] + (clause,) + desc.clauses[k + 1:]
    return _false_or_none(scene, replace(desc, clauses=clauses))


def named_agents(desc: Description) -> int:
    """How many distinct shapes a description names (subjects and relation targets)."""
    return len({c.subject.key for c in desc.clauses if c.subject is not None}
               | {c.target.key for c in desc.clauses if c.target is not None})


def hallucinate_counting(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Change the stated number of shapes to one the text allows: at least the shapes the caption names and at most
    the world's largest count (`MAX_AGENTS`). A count below the shapes named, or one no video has, is given away by
    the text alone (PROTOCOL.md, "The toy world")."""
    if desc.count is None:
        return None
    new = _pick(rng, [n for n in range(max(named_agents(desc), 1), MAX_AGENTS + 1) if n != desc.count])
    return _false_or_none(scene, replace(desc, count=new) if new is not None else None)


def hallucinate_flip(scene: Scene, desc: Description, rng: np.random.Generator) -> Description | None:
    """Swap the order of two events (pronouns re-derived: "it" still means the previous subject)."""
    explicit = list(resolve(desc))
    pairs = [(i, j) for i in range(len(explicit)) for j in range(i + 1, len(explicit)) if explicit[i] != explicit[j]]
    pair = _pick(rng, pairs)
    if pair is None:
        return None
    i, j = pair
    explicit[i], explicit[j] = explicit[j], explicit[i]
    return _false_or_none(scene, replace(desc, clauses=pronominalize(explicit)))


HALLUCINATIONS: dict[str, Generator] = {
    "object": hallucinate_object,
    "action": hallucinate_action,
    "attribute": hallucinate_attribute,
    "relation": hallucinate_relation,
    "hallucination": hallucinate_hallucination,
    "counting": hallucinate_counting,
    "flip": hallucinate_flip,
}


# ----------------------------------------------------------------------------- VELOCITI's negatives
# Each returns (positive, negative) descriptions without a count sentence, or None.

Pair = tuple[Description, Description]


def _single(c: Clause) -> Description:
    return Description((c,))


def _checked(scene: Scene, pos: Description, neg: Description | None) -> Pair | None:
    if neg is None or not entails(scene, pos) or entails(scene, neg):
        return None
    return pos, neg


def agent_iden(scene: Scene, k: int, rng: np.random.Generator) -> Pair | None:
    """Event k with its agent replaced by a shape that is not in the video."""
    c = clause_of(scene, scene.events[k])
    who = _pick(rng, absent_agents(scene))
    return _checked(scene, _single(c), _single(replace(c, subject=who)) if who else None)


def agent_bind(scene: Scene, k: int, rng: np.random.Generator) -> Pair | None:
    """Event k done by another shape of the same video (which never does it)."""
    e = scene.events[k]
    c = clause_of(scene, e)
    others = [i for i in range(len(scene.agents)) if i not in (e.agent, e.target)]
    cands = [replace(c, subject=np_of(scene.agents[i])) for i in others]
    cands = [n for n in cands if not entails(scene, _single(n))]
    return _checked(scene, _single(c), _single(_pick(rng, cands)) if cands else None)


def action_bind(scene: Scene, k: int, rng: np.random.Generator) -> Pair | None:
    """Event k's agent doing what another agent of the video does (action, adverb and relation)."""
    e = scene.events[k]
    c = clause_of(scene, e)
    cands = []
    for m, o in enumerate(scene.events):
        if o.agent == e.agent or o.target == e.agent or o.action == e.action:
            continue
        n = replace(clause_of(scene, o), subject=c.subject)
        if not entails(scene, _single(n)):
            cands.append(n)
    return _checked(scene, _single(c), _single(_pick(rng, cands)) if cands else None)


def action_mod(scene: Scene, k: int, rng: np.random.Generator) -> Pair | None:
    """Event k with its action replaced by one that nobody in the video performs."""
    c = clause_of(scene, scene.events[k])
    new = _pick(rng, unperformed_actions(scene, moves_only=c.relation is not None))
    return _checked(scene, _single(c), _single(replace(c, action=new)) if new else None)


def action_adv(scene: Scene, k: int, rng: np.random.Generator) -> Pair | None:
    """Event k with the opposite adverb ("quickly" <-> "slowly")."""
    c = clause_of(scene, scene.events[k])
    other = [a for a in ADVERBS if a != c.adverb][0]
    return _checked(scene, _single(c), _single(replace(c, adverb=other)))


def coref(scene: Scene, i: int, j: int, rng: np.random.Generator) -> Pair | None:
    """Events i < j of one agent as "A does x, then it does y"; the negative's "it" does a later event of
    another agent ("then it does z"), i.e. the pronoun is bound to the wrong agent."""
    ei, ej = scene.events[i], scene.events[j]
    if not i < j or ei.agent != ej.agent:
        return None
    ci, cj = clause_of(scene, ei), clause_of(scene, ej)
    pos = Description(pronominalize([ci, cj]))
    cands = []
    for m in range(i + 1, len(scene.events)):
        o = scene.events[m]
        if o.agent == ei.agent or o.target == ei.agent:
            continue
        n = Description(pronominalize([ci, replace(clause_of(scene, o), subject=ci.subject)]))
        if not entails(scene, n):
            cands.append(n)
    return _checked(scene, pos, _pick(rng, cands))


def sequence(scene: Scene, i: int, j: int, rng: np.random.Generator) -> Pair | None:
    """Events i < j in their order ("x, then y") against the reversed order ("y, then x")."""
    if not i < j:
        return None
    ci, cj = clause_of(scene, scene.events[i]), clause_of(scene, scene.events[j])
    if ci == cj:
        return None
    return _checked(scene, Description(pronominalize([ci, cj])), Description(pronominalize([cj, ci])))


def control(scene: Scene, k: int, other: Scene, rng: np.random.Generator) -> Pair | None:
    """Event k against a caption of an event of another video (`other`) that is false of this one."""
    c = clause_of(scene, scene.events[k])
    cands = [_single(clause_of(other, e)) for e in other.events]
    cands = [n for n in cands if not entails(scene, n)]
    return _checked(scene, _single(c), _pick(rng, cands))
