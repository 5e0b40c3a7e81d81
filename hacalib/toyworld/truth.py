"""The symbolic truth checker: does a description hold of a scene?

Semantics of the toy grammar:
- the count sentence (if any) must equal the number of shapes;
- every noun phrase must name a shape of the scene (by size, colour and shape);
- "it" is the previous clause's subject;
- the clauses must match distinct events in the same temporal order ("then"); a description may leave
  events out (a one-event caption is true of a three-event video);
- a clause matches an event of its subject with the same action and adverb; a stated relation must hold
  geometrically over that event (`scene.relation_holds`), independent of how the scene was labelled.

May import: numpy, its own package's modules.
"""

from __future__ import annotations

import numpy as np

from .grammar import Clause, Description, resolve
from .scene import Scene, relation_holds, trajectory


def _agent_index(scene: Scene, key: tuple[str, str, str]) -> int | None:
    for i, a in enumerate(scene.agents):
        if a.key == key:
            return i
    return None


def clause_matches(scene: Scene, traj: np.ndarray, clause: Clause, event_index: int) -> bool:
    """Whether explicit `clause` states event `event_index` of `scene` truly."""
    e = scene.events[event_index]
    if clause.subject is None:
        raise ValueError("clause_matches needs a resolved clause")
    if _agent_index(scene, clause.subject.key) != e.agent:
        return False
    if (clause.action, clause.adverb) != (e.action, e.adverb):
        return False
    if clause.relation is not None:
        other = _agent_index(scene, clause.target.key) if clause.target is not None else None
        if other is None or not relation_holds(scene, traj, e, clause.relation, other):
            return False
    return True


def entails(scene: Scene, desc: Description) -> bool:
    """True iff every claim of `desc` holds in `scene` (see the module docstring)."""
    if desc.count is not None and desc.count != len(scene.agents):
        return False
    traj = trajectory(scene)
    nxt = 0
    for clause in resolve(desc):
        # the earliest matching event is always the best choice for an ordered (subsequence) match
        found = next((k for k in range(nxt, len(scene.events)) if clause_matches(scene, traj, clause, k)), None)
        if found is None:
            return False
        nxt = found + 1
    return True


def rebinds(scene: Scene, desc: Description) -> bool:
    """True if some clause gives a shape of the scene an action (with adverb) that only other shapes perform.

    This is the error behind VELOCITI's binding and coreference tests ("then it grows" where another
    shape grows). Training data must never contain it; the builder and the tests use this check.
    """
    keys = [a.key for a in scene.agents]
    for c in resolve(desc):
        if c.subject is None or c.subject.key not in keys:
            continue
        me = keys.index(c.subject.key)
        doers = {e.agent for e in scene.events if (e.action, e.adverb) == (c.action, c.adverb)}
        if doers and me not in doers:
            return True
    return False
