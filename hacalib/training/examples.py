"""Training examples for the three objectives, and their token encoding with labels.

objective -> examples (PROTOCOL.md, "Prompts, targets and masking"), for each VideoCon triplet (video, contrast caption, true caption):

| objective   | true caption          | contrast caption              | extra                                   |
|-------------|-----------------------|-------------------------------|-----------------------------------------|
| `entail`    | entail prompt -> Yes  | entail prompt -> No           |                                         |
| `haca`      | entail prompt -> Yes  | entail prompt -> No, {true}   |                                         |
| `haca_mask` | as haca               | as haca                       | mask prompt(masked true) -> true caption |

"neg" examples come once per triplet; "mask" examples, and by default "pos" examples, once per distinct
(video, true caption).

Every objective uses the same triplets, so the same training videos. Labels are set here, when an example
is encoded (IGNORE_INDEX on the prompt and video tokens, `hacalib.models.text`); the collators only pad.
Prompts come from a chat template (`hacalib.prompts.ChatTemplate`, the model family's; Video-LLaVA's by default).

May import: `hacalib.config`, `hacalib.prompts`, `hacalib.errors`, `hacalib.models` (text), `.masking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .. import prompts
from ..config import DEFAULT_MASK_RATIO, OBJECTIVES
from ..errors import DataError
from ..models.text import answer_token_ids, encode_answer  # noqa: F401  (answer_token_ids: re-exported for callers)
from ..prompts import ChatTemplate
from .masking import Tagger, mask_captions


@dataclass(frozen=True)
class Example:
    """One (video, prompt, target) training record.

    video: the video's path or key (as in the triplet); prompt: the full prompt with one `<video>`;
    target: the answer text after `ANSWER_SEP`; kind: "pos" (true caption), "neg" (contrast caption) or
    "mask" (masking correction).
    """

    video: Any
    prompt: str
    target: str
    kind: str


def _get(triplet: Any, name: str) -> Any:
    return triplet[name] if isinstance(triplet, dict) else getattr(triplet, name)


def build_examples(
    objective: str,
    triplets: Iterable[Any],
    *,
    mask_ratio: float = DEFAULT_MASK_RATIO,
    seed: int = 0,
    tagger: Tagger | None = None,
    haca_format: str = prompts.DEFAULT_HACA_FORMAT,
    dedupe_pos: bool = True,
    source: str = "<triplets>",
    template: ChatTemplate = prompts.VIDEO_LLAVA,
) -> list[Example]:
    """The training examples of `objective` for `triplets`, in triplet order (the trainer shuffles).

    Args:
        objective: "entail", "haca" or "haca_mask".
        triplets: objects or dicts with `video`, `description` (the contrast caption) and `correction`
            (the true caption), as `hacalib.data` builds them from VideoCon rows.
        mask_ratio: fraction of content words hidden in the masking task (haca_mask only).
        seed: masking seed (which words are hidden depends on seed and caption only).
        tagger: part-of-speech tagger for masking (default spaCy; `WordClassTagger` for toy captions).
        haca_format: key of `prompts.HACA_NEGATIVE_FORMATS` for the contrast caption's target.
        dedupe_pos: a true caption with several contrast captions gives its "pos" example once (as VideoCon's
            `prepare_data_for_train.py` drops repeated pairs); False gives one per triplet.
        source: file the triplets came from, named in errors.
        template: the model family's chat template (`family_of(model).template`).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    rows = []
    for i, t in enumerate(triplets):
        video, neg, true = (_get(t, k) for k in ("video", "description", "correction"))
        for key, text in (("description", neg), ("correction", true)):
            if not isinstance(text, str) or not text.strip():
                raise DataError(source, f"empty or non-text {key} {text!r}", row=getattr(t, "row", i), key=key)
        rows.append((video, neg.strip(), true.strip()))

    masked = {}
    if objective == "haca_mask":
        # One masking example per distinct (video, true caption), tagged in one batch.
        pairs = list(dict.fromkeys((v, true) for v, _, true in rows))
        for pair, m in zip(pairs, mask_captions([c for _, c in pairs], mask_ratio, seed, tagger)):
            masked[pair] = m.text

    examples, seen_pos = [], set()
    for video, neg, true in rows:
        if objective == "entail":
            pos_target, neg_target = prompts.entail_target(True), prompts.entail_target(False)
        else:
            pos_target = prompts.haca_target(True, true, haca_format)
            neg_target = prompts.haca_target(False, true, haca_format)
        if not (dedupe_pos and (video, true) in seen_pos):
            examples.append(Example(video, template.entail_prompt(true), pos_target, "pos"))
            seen_pos.add((video, true))
        examples.append(Example(video, template.entail_prompt(neg), neg_target, "neg"))
        if (video, true) in masked:
            examples.append(Example(video, template.mask_prompt(masked.pop((video, true))), true, "mask"))
    return examples


def encode(
    example: Example,
    tokenizer: Any,
    num_video_tokens: int | None = None,
    answer_ids: tuple[int, int] | None = None,
    template: ChatTemplate = prompts.VIDEO_LLAVA,
) -> dict[str, list[int]]:
    """Token ids, labels and attention mask of one example (`hacalib.models.text.encode_answer`).

    Args:
        example: the record (its prompt holds one video placeholder).
        tokenizer: the processor's tokenizer (adds BOS like Llama's).
        num_video_tokens: expand the single placeholder to this many copies, as the model's processor does
            (`hacalib.models.num_video_tokens`); None keeps the single placeholder.
        answer_ids: `answer_token_ids(tokenizer)`; when given, a "pos"/"neg" example must start its target
            with the Yes/No token that scoring reads (a tokenizer that merges "No," into one piece fails here).
        template: the chat template the prompt was written with (its answer separator and placeholder).

    Returns lists of ints: `input_ids`, `labels` (IGNORE_INDEX everywhere but the target tokens and the EOS that
    ends them) and `attention_mask` (all ones; the collator pads).
    """
    first = None
    if answer_ids is not None and example.kind in ("pos", "neg"):
        first = (answer_ids[0], "Yes") if example.kind == "pos" else (answer_ids[1], "No")
    return encode_answer(tokenizer, example.prompt, example.target, num_video_tokens, first_token=first,
                         template=template)


def count_by_kind(examples: Sequence[Example]) -> dict[str, int]:
    """How many examples of each kind (for logs and the data-construction notebook)."""
    out: dict[str, int] = {}
    for e in examples:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
