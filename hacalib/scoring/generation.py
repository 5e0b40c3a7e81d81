"""Open-ended answers: greedy generation grouped by video, for MSRVTT-QA and for HACA's corrections.

Generation (`iter_generate`, `generate_texts`) groups prompts by video: the vision side runs once per video and its
features are handed to the family's `generate` for every question of that video, in left-padded batches with
greedy decoding. Batches are planned once from the whole request list (`generation_batches`) and never depend on
what was skipped, so a resumed run (`hacalib.scoring.answers_file`) forms the same batches as an uninterrupted one.
Used for MSRVTT-QA (`answer_questions`) and for HACA's corrections (`generate_corrections`: the answer to the
entailment prompt, e.g. "No, <corrected caption>"). Judging the answers is `.judges`.

May import: torch, `hacalib.data` (QAItem), `hacalib.errors`, `hacalib.models`, `.requests`.
"""

from __future__ import annotations

from typing import Any, Collection, Iterator, MutableMapping, Sequence

import torch

from ..data import QAItem
from ..errors import DataError
from ..models import chat_template, family_of, num_video_tokens, prompt_ids
from ..models.packing import video_features
from .requests import ScoreRequest, VideoLoader, group_by_video, model_device, pad_sequences

CORRECTION_MAX_NEW_TOKENS = 48  # a correction is a whole caption; a QA answer is one word (16 is plenty)


def generation_batches(videos: Sequence[ScoreRequest], batch_size: int) -> list[list[int]]:
    """Prompt indices per `generate` call: videos in order of first appearance, each cut into pieces of
    `batch_size` prompts; consecutive pieces share a call while they fit (one call has a large fixed cost on small
    models), a piece is never split. So a video's prompts are either alone in full calls or, for its last piece,
    share one call with other videos' last pieces, and the plan depends only on the whole request list."""
    batches: list[list[int]] = []
    current: list[int] = []
    for group in group_by_video(videos):
        for start in range(0, len(group), batch_size):
            piece = group[start : start + batch_size]
            if len(current) + len(piece) > batch_size:
                batches.append(current)
                current = []
            current = current + piece
    if current:
        batches.append(current)
    return batches


def iter_generate(
    model: torch.nn.Module,
    processor: Any,
    videos: Sequence[ScoreRequest],
    prompt_texts: Sequence[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 16,
    video_cache: MutableMapping | None = None,
    num_frames: int = 8,
    device: str | torch.device | None = None,
    skip: Collection = (),
) -> Iterator[tuple[Any, list[int], list[str]]]:
    """Greedy continuations, yielded per finished video as (video key, its prompt indices, their texts), videos in
    the order they finish. Arguments as `generate_texts`; `skip` holds video keys not to answer (already done): a
    planned call whose videos are all skipped is not made; any other call runs whole (the same batch as in an
    uninterrupted run) and yields only its videos that are not skipped."""
    if len(videos) != len(prompt_texts):
        raise ValueError(f"{len(videos)} videos for {len(prompt_texts)} prompts")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size and max_new_tokens must be >= 1, got {batch_size}, {max_new_tokens}")
    tok = processor.tokenizer
    family = family_of(model)
    nvt = num_video_tokens(processor, num_frames)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = model_device(model, device)
    group_of = {videos[g[0]].key(): g for g in group_by_video(videos)}
    batches = generation_batches(videos, batch_size)
    last_call = {videos[i].key(): b for b, idx in enumerate(batches) for i in idx}
    feats_of: dict[Any, torch.Tensor] = {}  # videos with prompts still to answer
    answered: dict[int, str] = {}
    with torch.inference_mode():
        for b, idx in enumerate(batches):
            keys = list(dict.fromkeys(videos[i].key() for i in idx))
            if all(k in skip for k in keys):
                continue
            for key in keys:
                if key not in feats_of:
                    request = videos[group_of[key][0]]
                    feats_of[key] = video_features(model, load(request)[None])[0]  # the vision side once per video
                    if video_cache is None:
                        load.cache.pop(key)  # the features are kept; the decoded pixels are not needed again
            ids, att = pad_sequences(prompt_ids(tok, [prompt_texts[i] for i in idx], nvt, family.template),
                                     tok.pad_token_id, "left")
            feats = torch.stack([feats_of[videos[i].key()] for i in idx])
            seqs = family.generate(model, ids.to(dev), att.to(dev), feats,
                                   max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            for i, text in zip(idx, tok.batch_decode(seqs[:, ids.shape[1] :], skip_special_tokens=True)):
                answered[i] = text.strip()
            for key in keys:
                if last_call[key] == b:  # the video's last piece: every prompt of it is answered
                    del feats_of[key]
                    texts = [answered.pop(i) for i in group_of[key]]
                    if key not in skip:
                        yield key, group_of[key], texts


def generate_texts(
    model: torch.nn.Module,
    processor: Any,
    videos: Sequence[ScoreRequest],
    prompt_texts: Sequence[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 16,
    video_cache: MutableMapping | None = None,
    num_frames: int = 8,
    device: str | torch.device | None = None,
) -> list[str]:
    """Greedy continuation of each prompt given its video, in input order (special tokens dropped, stripped).

    Args:
        model: a model of a registered family (or its peft wrapper) in eval mode.
        processor: its processor.
        videos: one request per prompt; only its video (and `video_id`) are used, to load and group videos.
        prompt_texts: full prompts with one video placeholder (e.g. `family_of(model).template.qa_prompt(q)`).
        max_new_tokens: generation length limit.
        batch_size: most prompts per `generate` call (`generation_batches`).
        video_cache, num_frames, device: as `hacalib.scoring.pyes.p_yes` (without a `video_cache`, a video's
            decoded pixels are dropped once its features are computed).
    """
    out: list[str | None] = [None] * len(videos)
    for _, idx, texts in iter_generate(model, processor, videos, prompt_texts, max_new_tokens=max_new_tokens,
                                       batch_size=batch_size, video_cache=video_cache, num_frames=num_frames,
                                       device=device):
        for i, text in zip(idx, texts):
            out[i] = text
    return out  # type: ignore[return-value]


def qa_inputs(model: torch.nn.Module, items: Sequence[QAItem], *,
              source: str = "test_q.json") -> tuple[list[ScoreRequest], list[str]]:
    """(requests, prompts) of MSRVTT-QA-format questions: the video and question of each item, the family's QA
    prompt. `source` (the questions file) is named when an item has no video path."""
    for it in items:
        if it.video_path is None:
            problem = "question has no video path (load it with a video_root)"
            raise DataError(source, problem, row=it.row, key="video_name")
    template = family_of(model).template
    return [ScoreRequest(it.video_path, it.question) for it in items], [template.qa_prompt(it.question) for it in items]


def correction_prompts(model: torch.nn.Module, requests: Sequence[ScoreRequest], prompt: str = "haca") -> list[str]:
    """The entailment prompt of each (video, caption) request, whose full answer is "Yes" or "No, <correction>";
    `prompt`: the entailment question option (`hacalib.prompts.ENTAIL_PROMPTS`)."""
    template = chat_template(model, prompt)
    return [template.entail_prompt(r.caption) for r in requests]


def answer_questions(
    model: torch.nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    *,
    source: str = "test_q.json",
    **kwargs: Any,
) -> list[str]:
    """Greedy answers to MSRVTT-QA-format questions (the family's QA prompt), in item order.

    Args:
        items: from `hacalib.data.load_msrvtt_qa(..., video_root=...)` (each needs `video_path`).
        source: the questions file, named in errors.
        kwargs: passed to `generate_texts` (max_new_tokens, batch_size, video_cache, ...).
    """
    videos, texts = qa_inputs(model, items, source=source)
    return generate_texts(model, processor, videos, texts, **kwargs)


def generate_corrections(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    *,
    max_new_tokens: int = CORRECTION_MAX_NEW_TOKENS,
    **kwargs: Any,
) -> list[str]:
    """The model's full answer to the entailment prompt of each (video, caption): "Yes" or "No, <correction>".

    Used by the failure analysis to show what a HACA model believes the video shows.
    kwargs go to `generate_texts`.
    """
    texts = correction_prompts(model, requests)
    return generate_texts(model, processor, requests, texts, max_new_tokens=max_new_tokens, **kwargs)
