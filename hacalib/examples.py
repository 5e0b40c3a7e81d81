"""Training examples for the three objectives, and their token encoding with labels.

objective -> examples (DESIGN.md section 4), for each VideoCon triplet (video, contrast caption, true caption):

| objective   | true caption          | contrast caption              | extra                                   |
|-------------|-----------------------|-------------------------------|-----------------------------------------|
| `entail`    | entail prompt -> Yes  | entail prompt -> No           |                                         |
| `haca`      | entail prompt -> Yes  | entail prompt -> No, {true}   |                                         |
| `haca_mask` | as haca               | as haca                       | mask prompt(masked true) -> true caption |

"neg" examples come once per triplet; "mask" examples, and by default "pos" examples, once per distinct
(video, true caption).

Every objective uses the same triplets, so the same training videos. Labels are set here, when an example
is encoded (-100 on the prompt and video tokens); `hacalib.collate.pad_collate` only pads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from . import prompts
from .errors import DataError
from .masking import DEFAULT_RATIO, Tagger, mask_captions

OBJECTIVES = ("entail", "haca", "haca_mask")
IGNORE_INDEX = -100


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
    mask_ratio: float = DEFAULT_RATIO,
    seed: int = 0,
    tagger: Tagger | None = None,
    haca_format: str = prompts.DEFAULT_HACA_FORMAT,
    dedupe_pos: bool = True,
    source: str = "<triplets>",
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
            examples.append(Example(video, prompts.entail_prompt(true), pos_target, "pos"))
            seen_pos.add((video, true))
        examples.append(Example(video, prompts.entail_prompt(neg), neg_target, "neg"))
        if (video, true) in masked:
            examples.append(Example(video, prompts.mask_prompt(masked.pop((video, true))), true, "mask"))
    return examples


def _split_prompt_target(tokenizer: Any, prompt: str, target: str) -> tuple[list[int], list[int]]:
    """Token ids of the prompt, and of the target as it is tokenized after the prompt."""
    prompt_ids = tokenizer(prompt).input_ids
    full_ids = tokenizer(prompt + prompts.ANSWER_SEP + target).input_ids
    # The answer must start on a token boundary, else labels and P(yes) would read a merged token.
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"tokenizer merges the prompt's end with the answer {target!r}; prompt: {prompt[-40:]!r}")
    return prompt_ids, full_ids[len(prompt_ids) :]


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The ids of the first answer token of `Yes` and `No` after an entailment prompt: (yes_id, no_id).

    Looked up through the tokenizer in the same way `encode` tokenizes targets, so P(yes) at scoring time
    reads exactly the tokens the model was trained to emit.
    """
    prompt = prompts.entail_prompt("a video")
    ids = [_split_prompt_target(tokenizer, prompt, ans)[1] for ans in (prompts.YES, prompts.NO)]
    if not ids[0] or not ids[1] or ids[0][0] == ids[1][0]:
        raise ValueError(f"Yes/No do not start with distinct tokens: {ids}")
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and unk in (ids[0][0], ids[1][0]):
        raise ValueError("Yes or No is an unknown token for this tokenizer")
    return ids[0][0], ids[1][0]


def encode(
    example: Example,
    tokenizer: Any,
    num_video_tokens: int | None = None,
    answer_ids: tuple[int, int] | None = None,
) -> dict[str, list[int]]:
    """Token ids, labels and attention mask of one example.

    Args:
        example: the record (its prompt holds one `<video>`).
        tokenizer: the processor's tokenizer (adds BOS like Llama's).
        num_video_tokens: expand the single `<video>` token to this many copies, as `VideoLlavaProcessor`
            does (`hacalib.models.num_video_tokens`); None keeps the single placeholder.
        answer_ids: `answer_token_ids(tokenizer)`; when given, a "pos"/"neg" example must start its target
            with the Yes/No token that scoring reads (a tokenizer that merges "No," into one piece fails here).

    Returns lists of ints: `input_ids`, `labels` (-100 everywhere but the target tokens and the EOS that
    ends them) and `attention_mask` (all ones; the collator pads).
    """
    prompt_ids, target_ids = _split_prompt_target(tokenizer, example.prompt, example.target)
    if num_video_tokens is not None:
        video_id = tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN)
        where = [i for i, t in enumerate(prompt_ids) if t == video_id]
        if len(where) != 1:
            raise ValueError(f"expected one {prompts.VIDEO_TOKEN} token in the prompt, found {len(where)}")
        i = where[0]
        prompt_ids = prompt_ids[:i] + [video_id] * num_video_tokens + prompt_ids[i + 1 :]
    if answer_ids is not None and example.kind in ("pos", "neg"):
        want = answer_ids[0] if example.kind == "pos" else answer_ids[1]
        if not target_ids or target_ids[0] != want:
            raise ValueError(
                f"target {example.target!r} does not start with the {'Yes' if example.kind == 'pos' else 'No'} "
                f"token {want} that P(yes) reads (first target tokens: {target_ids[:3]})"
            )
    target_ids = target_ids + [tokenizer.eos_token_id]
    input_ids = prompt_ids + target_ids
    return {
        "input_ids": input_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids,
        "attention_mask": [1] * len(input_ids),
    }


def count_by_kind(examples: Sequence[Example]) -> dict[str, int]:
    """How many examples of each kind (for logs and the data-construction notebook)."""
    out: dict[str, int] = {}
    for e in examples:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
