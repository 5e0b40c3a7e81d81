"""Prompts to token ids: the video placeholder expanded, the answer tokenized after its prompt, the Yes/No ids.

Training (`hacalib.training.examples.encode`) and scoring (`hacalib.scoring`) tokenize through these functions, so
the prompt a P(yes) is read after is the prompt the model was trained on, token for token. `IGNORE_INDEX` is the
label of every token without a target (the Hugging Face convention), defined here once.

May import: `hacalib.prompts`.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import prompts
from ..prompts import ChatTemplate

IGNORE_INDEX = -100


def expand_video_token(ids: Sequence[int], video_id: int, num_video_tokens: int, *, what: str = "the prompt",
                       placeholder: str = prompts.VIDEO_TOKEN) -> list[int]:
    """`ids` with its single video placeholder repeated `num_video_tokens` times (as the processor expands it)."""
    where = [k for k, t in enumerate(ids) if t == video_id]
    if len(where) != 1:
        raise ValueError(f"expected one {placeholder} token in {what}, found {len(where)}")
    k = where[0]
    return list(ids[:k]) + [video_id] * num_video_tokens + list(ids[k + 1 :])


def split_prompt_target(tokenizer: Any, prompt: str, target: str,
                        template: ChatTemplate = prompts.VIDEO_LLAVA) -> tuple[list[int], list[int]]:
    """Token ids of the prompt, and of the target as it is tokenized after the prompt (and the answer separator)."""
    prompt_ids = tokenizer(prompt).input_ids
    full_ids = tokenizer(prompt + template.answer_sep + target).input_ids
    # The answer must start on a token boundary, else labels and P(yes) would read a merged token.
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"tokenizer merges the prompt's end with the answer {target!r}; prompt: {prompt[-40:]!r}")
    return prompt_ids, full_ids[len(prompt_ids) :]


def answer_token_ids(tokenizer: Any, template: ChatTemplate = prompts.VIDEO_LLAVA) -> tuple[int, int]:
    """The ids of the first answer token of `Yes` and `No` after an entailment prompt: (yes_id, no_id).

    Looked up through the tokenizer in the same way targets are tokenized, so P(yes) at scoring time reads exactly
    the tokens the model was trained to emit.
    """
    prompt = template.entail_prompt("a video")
    ids = [split_prompt_target(tokenizer, prompt, ans, template)[1] for ans in (prompts.YES, prompts.NO)]
    if not ids[0] or not ids[1] or ids[0][0] == ids[1][0]:
        raise ValueError(f"Yes/No do not start with distinct tokens: {ids}")
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and unk in (ids[0][0], ids[1][0]):
        raise ValueError("Yes or No is an unknown token for this tokenizer")
    return ids[0][0], ids[1][0]


def encode_answer(tokenizer: Any, prompt: str, target: str, num_video_tokens: int | None = None, *,
                  first_token: tuple[int, str] | None = None, template: ChatTemplate = prompts.VIDEO_LLAVA) -> dict[str, list[int]]:
    """Token ids, labels and attention mask of one (prompt, target): labels only on the target and its EOS.

    Args:
        num_video_tokens: expand the prompt's single video placeholder to this many copies; None keeps it single.
        first_token: (id, name): the target must start with this token (the Yes/No token P(yes) reads).
    """
    prompt_ids, target_ids = split_prompt_target(tokenizer, prompt, target, template)
    if num_video_tokens is not None:
        video_id = tokenizer.convert_tokens_to_ids(template.video_token)
        prompt_ids = expand_video_token(prompt_ids, video_id, num_video_tokens, placeholder=template.video_token)
    if first_token is not None and (not target_ids or target_ids[0] != first_token[0]):
        raise ValueError(f"target {target!r} does not start with the {first_token[1]} token {first_token[0]} that P(yes) reads "
                         f"(first target tokens: {target_ids[:3]})")
    target_ids = target_ids + [tokenizer.eos_token_id]
    input_ids = prompt_ids + target_ids
    return {
        "input_ids": input_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids,
        "attention_mask": [1] * len(input_ids),
    }


def prompt_ids(tokenizer: Any, prompt_texts: Sequence[str], num_video_tokens: int,
               template: ChatTemplate = prompts.VIDEO_LLAVA) -> list[list[int]]:
    """Token ids of each prompt as `encode_answer` builds the prompt part, the video placeholder expanded.

    `encode_answer` tokenizes the prompt on its own (and checks that the answer does not merge into it), so the
    prompt's ids here are the same; one batched tokenizer call instead of one per prompt.
    """
    video_id = tokenizer.convert_tokens_to_ids(template.video_token)
    return [expand_video_token(ids, video_id, num_video_tokens, what=f"prompt {i}", placeholder=template.video_token)
            for i, ids in enumerate(tokenizer(list(prompt_texts)).input_ids)]
