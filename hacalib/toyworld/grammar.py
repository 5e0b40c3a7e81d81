"""Captions from a scene: a tiny closed grammar, its vocabulary and the word class of every word.

A caption is first a structured `Description` (an optional count and a sequence of clauses joined by
"then"), then text. Clauses whose subject is the previous clause's subject say "it" (coreference):

    there are two shapes. the big red circle moves left quickly towards the small blue square, then it grows slowly.

Hallucinations and benchmark negatives edit the `Description`, never the text, so a test can check
exactly what an edit changed. Text is lowercase; `tokenize` splits words and punctuation.

May import: its own package's modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .scene import Agent, Event, Scene

NUMBER_WORDS = ("zero", "one", "two", "three", "four")
MAX_COUNT = 4


@dataclass(frozen=True)
class NP:
    """A noun phrase naming one shape: "the big red circle"."""

    size: str
    color: str
    shape: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.size, self.color, self.shape)

    def text(self) -> str:
        return f"the {self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Clause:
    """One event claim. `subject=None` is the pronoun "it" (the previous clause's subject)."""

    subject: NP | None
    action: str
    adverb: str
    relation: str | None = None
    target: NP | None = None


@dataclass(frozen=True)
class Description:
    """A caption: an optional count sentence ("there are two shapes.") and clauses in temporal order."""

    clauses: tuple[Clause, ...]
    count: int | None = None


def np_of(agent: Agent) -> NP:
    return NP(agent.size, agent.color, agent.shape)


def clause_of(scene: Scene, event: Event) -> Clause:
    """The explicit clause (no pronoun) stating `event` of `scene`, with its relation if it has one."""
    target = np_of(scene.agents[event.target]) if event.target is not None else None
    return Clause(np_of(scene.agents[event.agent]), event.action, event.adverb, event.relation, target)


def resolve(desc: Description) -> tuple[Clause, ...]:
    """Clauses with every pronoun replaced by its antecedent (the previous clause's resolved subject)."""
    out: list[Clause] = []
    for i, c in enumerate(desc.clauses):
        if c.subject is None:
            if not out:
                raise ValueError("a description cannot start with a pronoun")
            c = replace(c, subject=out[-1].subject)
        out.append(c)
    return tuple(out)


def pronominalize(clauses: tuple[Clause, ...] | list[Clause]) -> tuple[Clause, ...]:
    """Explicit clauses -> clauses where a subject equal to the previous clause's subject becomes "it"."""
    out: list[Clause] = []
    prev: NP | None = None
    for c in clauses:
        if c.subject is None:
            raise ValueError("pronominalize expects explicit (resolved) clauses")
        subj = c.subject
        out.append(replace(c, subject=None) if prev is not None and subj == prev else c)
        prev = subj
    return tuple(out)


def describe(scene: Scene, events: list[int] | None = None, with_count: bool = True) -> Description:
    """The true description of `scene` (all events, or the listed event indices in temporal order)."""
    idx = list(range(len(scene.events))) if events is None else sorted(events)
    clauses = pronominalize([clause_of(scene, scene.events[i]) for i in idx])
    return Description(clauses, len(scene.agents) if with_count else None)


def action_phrase(action: str) -> str:
    """'move_left' -> 'moves left', 'grow' -> 'grows'."""
    if action.startswith("move_"):
        return f"moves {action[5:]}"
    return {"grow": "grows", "shrink": "shrinks", "jump": "jumps"}[action]


def count_sentence(n: int) -> str:
    if not 1 <= n <= MAX_COUNT:
        raise ValueError(f"count must be in 1..{MAX_COUNT}, got {n}")
    return "there is one shape." if n == 1 else f"there are {NUMBER_WORDS[n]} shapes."


def clause_text(c: Clause) -> str:
    subj = "it" if c.subject is None else c.subject.text()
    text = f"{subj} {action_phrase(c.action)} {c.adverb}"
    if c.relation is not None:
        if c.target is None:
            raise ValueError("a clause with a relation needs a target")
        text += f" {c.relation} {c.target.text()}"
    return text


def realize(desc: Description) -> str:
    """The caption text of a description."""
    body = ", then ".join(clause_text(c) for c in desc.clauses) + "."
    return body if desc.count is None else f"{count_sentence(desc.count)} {body}"


# ----------------------------------------------------------------------------- templates and questions

# Toy SSv2 templates, in the spirit of Something-Something ("Moving something from left to right"),
# each with the predicate on an event that makes a video match it.
SSV2_TEMPLATES: dict[str, str] = {
    "moving something from left to right": "move_right",
    "moving something from right to left": "move_left",
    "moving something up": "move_up",
    "moving something down": "move_down",
    "something growing": "grow",
    "something shrinking": "shrink",
    "something jumping": "jump",
    "moving something towards something": "towards",
    "moving something away from something": "away from",
}

# Instructions used in the pretraining records (the model side wraps them in its chat template).
CAPTION_INSTRUCTION = "Describe the video."
ENTAIL_INSTRUCTION = 'Does this video entail the description: "{caption}"?'
TEMPLATE_INSTRUCTION = "which template describes the video?"
YES, NO = "Yes", "No"


# ----------------------------------------------------------------------------- vocabulary

# Universal POS tags of every word the toy world writes (one class per word: the grammar is closed).
WORD_CLASSES: dict[str, str] = {
    **{w: "NOUN" for w in ("circle", "square", "triangle", "cross", "shape", "shapes", "color", "video",
                           "description", "template")},
    **{w: "ADJ" for w in ("big", "small", "red", "green", "blue", "yellow", "white", "many")},
    **{w: "VERB" for w in ("moves", "grows", "shrinks", "jumps", "move", "grow", "shrink", "jump", "moving",
                           "growing", "shrinking", "jumping", "do", "entail", "describe", "describes")},
    **{w: "AUX" for w in ("is", "are", "does")},
    **{w: "ADV" for w in ("left", "right", "up", "down", "quickly", "slowly", "away", "then", "how", "where", "when")},
    **{w: "ADJ" for w in ("first", "second", "third")},
    **{w: "PRON" for w in ("it", "something", "there", "what")},
    **{w: "DET" for w in ("the", "a", "this", "which")},
    **{w: "ADP" for w in ("towards", "from", "to")},
    **{w: "NUM" for w in NUMBER_WORDS[1:]},
    **{w: "INTJ" for w in ("yes", "no")},
    **{w: "PUNCT" for w in (".", ",", "?", ":", '"')},
}

_TOKEN = re.compile(r"[a-z]+|[.,?:\"]")


def tokenize(text: str) -> list[str]:
    """Lowercased words and punctuation marks of `text` (the toy tokenizer's word split)."""
    lowered = text.lower()
    tokens = _TOKEN.findall(lowered)
    rest = _TOKEN.sub(" ", lowered).strip()
    if rest:
        raise ValueError(f"text has characters outside the toy grammar: {rest!r} in {text!r}")
    return tokens


def vocabulary() -> list[str]:
    """Every word and punctuation mark the toy world can write, sorted (lowercase)."""
    return sorted(WORD_CLASSES)


def word_class(word: str) -> str:
    """Universal POS tag of a toy-world word (case-insensitive); KeyError for words outside the grammar."""
    return WORD_CLASSES[word.lower()]


# ----------------------------------------------------------------------------- parsing

_VERBS = {"moves": "move", "grows": "grow", "shrinks": "shrink", "jumps": "jump"}


def _parse_np(tokens: list[str], i: int, text: str) -> tuple[NP, int]:
    from .scene import COLORS, SHAPES, SIZES

    if tokens[i : i + 1] != ["the"] or len(tokens) < i + 4:
        raise ValueError(f"expected 'the <size> <color> <shape>' at word {i} of {text!r}")
    size, color, shape = tokens[i + 1 : i + 4]
    if size not in SIZES or color not in COLORS or shape not in SHAPES:
        raise ValueError(f"not a noun phrase: {' '.join(tokens[i:i + 4])!r} in {text!r}")
    return NP(size, color, shape), i + 4


def parse(text: str) -> Description:
    """The inverse of `realize`: text of the toy grammar -> `Description` (ValueError otherwise)."""
    try:
        return _parse(text)
    except IndexError:
        raise ValueError(f"incomplete description: {text!r}") from None


def _parse(text: str) -> Description:
    tokens = all_tokens = tokenize(text)
    count = None
    if tokens[:1] == ["there"]:
        n_words = {w: n for n, w in enumerate(NUMBER_WORDS)}
        if len(tokens) < 5 or tokens[2] not in n_words or tokens[4] != ".":
            raise ValueError(f"malformed count sentence in {text!r}")
        count = n_words[tokens[2]]
        tokens = tokens[5:]
    if not tokens or tokens[-1] != ".":
        raise ValueError(f"a description ends with '.': {text!r}")
    clauses = []
    i, end = 0, len(tokens) - 1
    while i < end:
        if clauses:
            if tokens[i : i + 2] != [",", "then"]:
                raise ValueError(f"expected ', then' at word {i} of {text!r}")
            i += 2
        if tokens[i] == "it":
            subject, i = None, i + 1
        else:
            subject, i = _parse_np(tokens, i, text)
        verb = _VERBS.get(tokens[i])
        if verb is None:
            raise ValueError(f"expected a verb at word {i} of {text!r}")
        i += 1
        action = verb
        if verb == "move":
            action, i = f"move_{tokens[i]}", i + 1
        adverb, i = tokens[i], i + 1
        relation = target = None
        if tokens[i] == "towards":
            relation, i = "towards", i + 1
        elif tokens[i : i + 2] == ["away", "from"]:
            relation, i = "away from", i + 2
        if relation is not None:
            target, i = _parse_np(tokens, i, text)
        clauses.append(Clause(subject, action, adverb, relation, target))
    desc = Description(tuple(clauses), count)
    if not clauses or clauses[0].subject is None:
        raise ValueError(f"a description starts with a noun phrase: {text!r}")
    if tokenize(realize(desc)) != all_tokens:
        raise ValueError(f"cannot parse {text!r}")
    return desc
