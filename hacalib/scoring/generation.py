"""Open-ended answers: greedy generation grouped by video, for MSRVTT-QA and for HACA's corrections.

Generation (`generate_texts`) groups prompts by video: the vision side runs once per video and its
features are handed to the family's `generate` for every question of that video, in left-padded batches with
greedy decoding. Used for MSRVTT-QA (`answer_questions`) and for HACA's corrections (`generate_corrections`:
the answer to the entailment prompt, e.g. "No, <corrected caption>"). Judging the answers is `.judges`.

May import: torch, `hacalib.data` (QAItem), `hacalib.errors`, `hacalib.models`, `.requests`.
"""

from __future__ import annotations

from typing import Any, MutableMapping, Sequence

import torch

from ..data import QAItem
from ..errors import DataError
from ..models import family_of, num_video_tokens, prompt_ids
from ..models.packing import video_features
from .requests import ScoreRequest, VideoLoader, group_by_video, model_device, pad_sequences


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
        batch_size: prompts per `generate` call (consecutive videos share a call).
        video_cache, num_frames, device: as `hacalib.scoring.pyes.p_yes`.
    """
    if len(videos) != len(prompt_texts):
        raise ValueError(f"{len(videos)} videos for {len(prompt_texts)} prompts")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size and max_new_tokens must be >= 1, got {batch_size}, {max_new_tokens}")
    tok = processor.tokenizer
    family = family_of(model)
    nvt = num_video_tokens(processor, num_frames)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = model_device(model, device)
    out: list[str | None] = [None] * len(videos)
    # Prompts in video order; a batch may span several videos (one `generate` call has a large fixed cost on
    # small models), but each video's tower runs once: its features are repeated for its own rows only.
    order = [i for group in group_by_video(videos) for i in group]
    feats_of: dict[Any, torch.Tensor] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for i in idx:
                key = videos[i].key()
                if key not in feats_of:
                    feats_of[key] = video_features(model, load(videos[i])[None])[0]  # the vision side once per video
            texts = [prompt_texts[i] for i in idx]
            ids, att = pad_sequences(prompt_ids(tok, texts, nvt, family.template), tok.pad_token_id, "left")
            feats = torch.stack([feats_of[videos[i].key()] for i in idx])
            seqs = family.generate(model, ids.to(dev), att.to(dev), feats,
                                   max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            texts = tok.batch_decode(seqs[:, ids.shape[1] :], skip_special_tokens=True)
            for i, t in zip(idx, texts):
                out[i] = t.strip()
            # a video whose questions are all answered is not needed again (videos come in order)
            done = {videos[i].key() for i in idx} - {videos[j].key() for j in order[start + batch_size : start + 2 * batch_size]}
            for key in done:
                feats_of.pop(key, None)
    return out  # type: ignore[return-value]


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
    for it in items:
        if it.video_path is None:
            problem = "question has no video path (load it with a video_root)"
            raise DataError(source, problem, row=it.row, key="video_name")
    videos = [ScoreRequest(it.video_path, it.question) for it in items]
    template = family_of(model).template
    return generate_texts(model, processor, videos, [template.qa_prompt(it.question) for it in items], **kwargs)


def generate_corrections(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    *,
    max_new_tokens: int = 48,
    **kwargs: Any,
) -> list[str]:
    """The model's full answer to the entailment prompt of each (video, caption): "Yes" or "No, <correction>".

    Used by the failure analysis to show what a HACA model believes the video shows.
    kwargs go to `generate_texts`.
    """
    template = family_of(model).template
    texts = [template.entail_prompt(r.caption) for r in requests]
    return generate_texts(model, processor, requests, texts, max_new_tokens=max_new_tokens, **kwargs)
