"""One-word-answer questions about a scene (toy MSRVTT-QA and pretraining QA).

Each question names its subject unambiguously in the scene (e.g. "the circle" only when one circle is
there), so every question has exactly one right answer. Types follow MSRVTT-QA's question words (what,
how, where, when); "when" asks for an event's place in the sequence ("first", "second", "third").

May import: numpy, its own package's modules.
"""

from __future__ import annotations

import numpy as np

from .grammar import NUMBER_WORDS, np_of
from .hallucinate import absent_agents
from .scene import COLORS, SHAPES, SIZES, Scene

BASE_VERB = {"grow": "grow", "shrink": "shrink", "jump": "jump"}
VERB_ANSWER = {"grow": "grows", "shrink": "shrinks", "jump": "jumps"}
ORDINALS = ("first", "second", "third")


def base_phrase(action: str) -> str:
    """'move_left' -> 'move left', 'grow' -> 'grow' (the verb phrase after "does ...")."""
    return f"move {action[5:]}" if action.startswith("move_") else BASE_VERB[action]


def all_questions(scene: Scene) -> list[tuple[str, str, str]]:
    """Every (question, answer, type) the scene supports, in a fixed order."""
    out = [("how many shapes are there?", NUMBER_WORDS[len(scene.agents)], "how")]
    shapes = [a.shape for a in scene.agents]
    colors = [a.color for a in scene.agents]
    for i, a in enumerate(scene.agents):
        if shapes.count(a.shape) == 1:
            out.append((f"what color is the {a.shape}?", a.color, "what"))
        if colors.count(a.color) == 1:
            out.append((f"what shape is {a.color}?", a.shape, "what"))
        mine = [e for e in scene.events if e.agent == i]
        if len(mine) != 1:
            continue  # "what does X do?" has one answer only when X does one thing
        e, np_ = mine[0], np_of(a).text()
        if e.action.startswith("move_"):
            out.append((f"what does {np_} do?", "moves", "what"))
            out.append((f"where does {np_} move?", e.action[5:], "where"))
            out.append((f"how does {np_} move?", e.adverb, "how"))
        else:
            out.append((f"what does {np_} do?", VERB_ANSWER[e.action], "what"))
            out.append((f"how does {np_} {BASE_VERB[e.action]}?", e.adverb, "how"))
    if len(scene.events) > 1:  # "when": the event's place in the sequence, if agent + action name one event
        done = [(e.agent, e.action) for e in scene.events]
        for k, e in enumerate(scene.events):
            if done.count((e.agent, e.action)) == 1:
                np_ = np_of(scene.agents[e.agent]).text()
                out.append((f"when does {np_} {base_phrase(e.action)}?", ORDINALS[k], "when"))
    return out


def sample_questions(scene: Scene, rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """Up to `n` distinct questions, drawn with their types mixed (one of each type, types in a random order,
    then again), so that every type is asked even when `n` is smaller than the number of types."""
    qs = all_questions(scene)
    order = [int(k) for k in rng.permutation(len(qs))]
    by_type: dict[str, list[int]] = {}
    for k in order:
        by_type.setdefault(qs[k][2], []).append(k)
    types = [sorted(by_type)[int(i)] for i in rng.permutation(len(by_type))]
    picked: list[int] = []
    while len(picked) < min(n, len(qs)):
        for t in types:
            if by_type[t] and len(picked) < n:
                picked.append(by_type[t].pop(0))
    return [qs[k] for k in picked]


def existence_question(scene: Scene, rng: np.random.Generator, answer_yes: bool) -> str:
    """'is there a big red circle?' about a present (yes) or absent (no) size-colour-shape triple.

    Half the absent ones are near misses: a shape of the video with one of its size, colour or shape words
    changed, so that the answer depends on which attributes belong together, not on one word alone.
    """
    present = scene.agent_keys()
    if answer_yes:
        pool = sorted(present)
    else:
        near = sorted({k for z, c, s in present
                       for k in [(z2, c, s) for z2 in SIZES] + [(z, c2, s) for c2 in COLORS] + [(z, c, s2) for s2 in SHAPES]
                       if k not in present})
        absent = [n.key for n in absent_agents(scene)]
        pool = near if near and rng.random() < 0.5 else absent
    z, c, s = pool[int(rng.integers(len(pool)))]
    return f"is there a {z} {c} {s}?"
