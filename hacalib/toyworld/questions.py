"""One-word-answer questions about a scene (toy MSRVTT-QA and pretraining QA).

Each question names its subject unambiguously in the scene (e.g. "the circle" only when one circle is
there), so every question has exactly one right answer. Types follow MSRVTT-QA's question words.
"""

from __future__ import annotations

import numpy as np

from .grammar import NUMBER_WORDS, np_of
from .scene import Scene

BASE_VERB = {"grow": "grow", "shrink": "shrink", "jump": "jump"}
VERB_ANSWER = {"grow": "grows", "shrink": "shrinks", "jump": "jumps"}


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
    return out


def sample_questions(scene: Scene, rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """Up to `n` distinct questions, drawn with their types mixed (each type first, then the rest)."""
    qs = all_questions(scene)
    order = [int(k) for k in rng.permutation(len(qs))]
    by_type: dict[str, list[int]] = {}
    for k in order:
        by_type.setdefault(qs[k][2], []).append(k)
    picked: list[int] = []
    while len(picked) < min(n, len(qs)):
        for t in sorted(by_type):
            if by_type[t] and len(picked) < n:
                picked.append(by_type[t].pop(0))
    return [qs[k] for k in picked]


def existence_question(scene: Scene, rng: np.random.Generator, answer_yes: bool) -> tuple[str, bool]:
    """'is there a red circle?' about a present (yes) or absent (no) colour-shape pair."""
    from .scene import COLORS, SHAPES

    present = {(a.color, a.shape) for a in scene.agents}
    pool = sorted(present) if answer_yes else [(c, s) for s in SHAPES for c in COLORS if (c, s) not in present]
    c, s = pool[int(rng.integers(len(pool)))]
    return f"is there a {c} {s}?", answer_yes
