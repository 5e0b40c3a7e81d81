"""P(yes): the model's alignment score for a (video, description) pair, the naive reference way and the packed way.

P(yes) = p(Yes) / (p(Yes) + p(No)) at the first answer position: the last token of the entailment prompt,
whose next token is the answer in training (`hacalib.models.text.encode_answer` puts the answer separator + target
right after the prompt, and the prompt's tokens are its own tokenization). The Yes/No ids come from
`hacalib.models.answer_token_ids`, the prompt from the model family's chat template (its entailment question
or an evaluation option, `hacalib.prompts.ENTAIL_PROMPTS`). Computed in float32 as
sigmoid(logit_yes - logit_no), which equals the ratio of the two softmax probabilities without underflow when
both are tiny.

Three methods, the same numbers (tests: within 1e-5 in float32):
- "naive": one padded batch of full sequences, each pair with its own copy of the video, the vision
  tower and the full output head per pair (the reference codebases' way);
- "packed" (default): requests grouped by video, one packed sequence per video (`hacalib.models.packing`),
  the vision side once per video, the output head only at the answer positions;
- "cascade": requests grouped by video and batched as "packed" batches them, each forward's videos' prefixes
  through the language model once (a batch of rows) and all their captions as one row of segments attending
  to their video's kept prefix keys/values (`hacalib.models.cascade`): no attention mask, so SDPA keeps its
  flash kernel; the output head only at the answer positions.

May import: torch, numpy, `hacalib.models`, `hacalib.metrics`, `.requests`.
"""

from __future__ import annotations

from typing import Any, Iterator, MutableMapping, Sequence

import numpy as np
import torch

from ..metrics import is_collapsed, pyes_spread
from ..models import answer_token_ids, chat_template, family_of, num_video_tokens, prompt_ids
from ..models.cascade import cascade_hidden
from ..models.packing import collate_packed, logits_at, pack, packed_hidden, split_prefix, video_features
from .requests import (
    PYES_METHODS,
    ScoreRequest,
    VideoLoader,
    check_method,
    chunks,
    group_by_video,
    model_device,
    naive_logits,
    packed_forwards,
    pad_sequences,
)


def _pyes(logits: torch.Tensor, yes: int, no: int) -> torch.Tensor:
    logits = logits.float()
    return torch.sigmoid(logits[:, yes] - logits[:, no])


def iter_pyes(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    *,
    batch_size: int = 8,
    method: str = "packed",
    segments_per_pack: int = 32,
    padding_side: str = "right",
    video_cache: MutableMapping | None = None,
    num_frames: int = 8,
    device: str | torch.device | None = None,
    skip: set | None = None,
    prompt: str = "haca",
) -> Iterator[tuple[Any, list[int], np.ndarray]]:
    """Yield (video key, request indices, P(yes)) per video as soon as all its captions are scored.

    Arguments as `p_yes`; `skip` holds video keys not to score (already done).
    """
    check_method(method, batch_size, segments_per_pack, PYES_METHODS)
    for i, r in enumerate(requests):  # a blank description would still get a P(yes): never a silent score
        if not isinstance(r.caption, str) or not r.caption.strip():
            raise ValueError(f"request {i} (video {r.key()!r}) has an empty caption {r.caption!r}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    tok = processor.tokenizer
    template = chat_template(model, prompt)
    nvt = num_video_tokens(processor, num_frames)
    yes, no = answer_token_ids(tok, template)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = model_device(model, device)
    groups = [g for g in group_by_video(requests) if not skip or requests[g[0]].key() not in skip]
    todo = [i for g in groups for i in g]
    texts = [template.entail_prompt(requests[i].caption) for i in todo]
    seq = dict(zip(todo, prompt_ids(tok, texts, nvt, template))) if todo else {}  # request index -> prompt ids
    # Work units: (group number, request indices); naive: batch_size pairs, packed / cascade: one video chunk.
    per_unit = batch_size if method == "naive" else segments_per_pack
    units = [(gi, list(c)) for gi, g in enumerate(groups) for c in chunks(g, per_unit)]
    units_per_forward = 1 if method == "naive" else batch_size
    results: dict[int, float] = {}
    remaining = [len(g) for g in groups]
    with torch.inference_mode():
        for step in chunks(units, units_per_forward):
            if method == "naive":
                (gi, idx), = step
                ids, att = pad_sequences([seq[i] for i in idx], tok.pad_token_id, padding_side)
                pv = torch.stack([load(requests[i]) for i in idx])
                logits = naive_logits(model, ids, att, pv, dev)
                # the last real token: the end of each row under right padding, the last column under left
                last = att.sum(dim=1) - 1 if padding_side == "right" else torch.full((len(idx),), att.shape[1] - 1)
                scores = _pyes(logits[torch.arange(len(idx)), last.to(logits.device)], yes, no)
                done = [(gi, idx)]
            else:
                splits, vids, row_vid = [], {}, []  # vids: group -> (feature row, one of its requests)
                for gi, idx in step:
                    splits.append(split_prefix([seq[i] for i in idx]))
                    vids.setdefault(gi, (len(vids), idx[0]))
                    row_vid.append(vids[gi][0])
                # chunks of one video in the same forward share one run of the vision tower
                feats = video_features(model, torch.stack([load(requests[i]) for _, i in vids.values()]))
                feats = feats[torch.tensor(row_vid, device=feats.device)]
                if method == "packed":
                    batch = collate_packed([pack(prefix, segs) for prefix, segs in splits], tok.pad_token_id).to(dev)
                    hidden = packed_hidden(model, batch, feats)
                    logits = logits_at(model, hidden, batch.answer_rows, batch.answer_cols)
                else:
                    logits = family_of(model).lm_head(model)(cascade_hidden(model, splits, feats, device=dev))
                scores = _pyes(logits, yes, no)
                done = list(step)
            flat = [i for _, idx in done for i in idx]
            for i, s in zip(flat, scores.cpu().numpy()):
                results[i] = float(s)
            for gi, idx in done:
                remaining[gi] -= len(idx)
                if remaining[gi] == 0:
                    g = groups[gi]
                    yield requests[g[0]].key(), g, np.array([results.pop(i) for i in g], dtype=np.float32)


def p_yes(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    *,
    batch_size: int = 8,
    method: str = "packed",
    segments_per_pack: int = 32,
    padding_side: str = "right",
    video_cache: MutableMapping | None = None,
    num_frames: int = 8,
    device: str | torch.device | None = None,
    prompt: str = "haca",
) -> np.ndarray:
    """P(yes) of every request, float32, in request order.

    Args:
        model: a model of a registered family (or its peft wrapper), in eval mode, on its device.
        processor: its processor.
        requests: the (video, caption) pairs.
        batch_size: "naive": pairs of one video per forward; "packed": packed sequences (video chunks)
            per forward; "cascade": video chunks per forward (their prefixes as a batch, then one segment pass).
        method: "packed" (default, prefix reuse), "naive" (full sequence per pair) or "cascade" (the prefix
            once per video, captions attending to its kept keys/values).
        segments_per_pack: most captions in one video chunk ("packed": one packed sequence; "cascade": one
            prefix); a video with more captions is split into several chunks, each with the prefix.
        padding_side: "naive" only: "right" or "left" (results do not depend on it).
        video_cache: dict of processed videos kept by the caller between calls (key: `ScoreRequest.key()`).
        num_frames: frames sampled per video file.
        device: where inputs go; default the model's device.
        prompt: the entailment question (`hacalib.prompts.ENTAIL_PROMPTS`; default "haca", the family's own).
    """
    out = np.full(len(requests), np.nan, dtype=np.float32)
    for _, idx, scores in iter_pyes(
        model, processor, requests, batch_size=batch_size, method=method, segments_per_pack=segments_per_pack,
        padding_side=padding_side, video_cache=video_cache, num_frames=num_frames, device=device, prompt=prompt,
    ):
        out[idx] = scores
    return out


def pyes_forwards(requests: Sequence[ScoreRequest], *, batch_size: int = 8, method: str = "packed",
                  segments_per_pack: int = 32, **_: Any) -> list[list[int]]:
    """Request indices per forward of `iter_pyes` with these settings (its batching, without running a model)."""
    check_method(method, batch_size, segments_per_pack, PYES_METHODS)
    groups = group_by_video(requests)
    if method == "naive":
        return packed_forwards(groups, batch_size, 1)
    return packed_forwards(groups, segments_per_pack, batch_size)


def summarize(scores: Sequence[float], tol: float = 1e-3) -> dict:
    """P(yes) spread (`metrics.pyes_spread`) plus `collapsed` (`metrics.is_collapsed`), for tables."""
    return {**pyes_spread(scores), "collapsed": is_collapsed(scores, tol)}
