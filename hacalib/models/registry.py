"""The known model families, and how a model, config or processor finds its own (`family_of`).

May import: `.family`, every family module (this is the one place that lists them) and `hacalib.prompts`.
"""

from __future__ import annotations

from typing import Any

from ..prompts import DEFAULT_ENTAIL_PROMPT, ChatTemplate, with_entail_prompt
from .family import VideoLLMFamily
from .videochat2.family import VIDEOCHAT2
from .videollava import VIDEO_LLAVA

FAMILIES: dict[str, VideoLLMFamily] = {VIDEO_LLAVA.name: VIDEO_LLAVA, VIDEOCHAT2.name: VIDEOCHAT2}


def register(family: VideoLLMFamily) -> VideoLLMFamily:
    """Add a family (e.g. one of your own) to `FAMILIES`, so `family_of` and `load_model` find it."""
    FAMILIES[family.name] = family
    return family


def family_of(obj: Any) -> VideoLLMFamily:
    """The family of a model (or its peft / DDP wrapper), config or processor."""
    for family in FAMILIES.values():
        if family.owns(obj):
            return family
    raise TypeError(f"no model family for {type(obj).__name__}; known: {', '.join(FAMILIES)}")


def get_family(name: str) -> VideoLLMFamily:
    """The family registered as `name`."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def chat_template(obj: Any, prompt: str = DEFAULT_ENTAIL_PROMPT) -> ChatTemplate:
    """The chat template evaluation uses for `obj`'s family, its entailment question the option `prompt`
    (`hacalib.prompts.ENTAIL_PROMPTS`; the default keeps the family's own)."""
    return with_entail_prompt(family_of(obj).template, prompt)
