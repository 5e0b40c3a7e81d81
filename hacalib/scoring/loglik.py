"""Caption log-likelihood: log p(caption | video) as the answer to the captioning prompt (the generative readout).

Naive (one padded row per caption) and packed (the captioning prompt once per video, each caption a segment behind
it) give the same numbers (tests: within 1e-5 in float32).

May import: torch, numpy, `hacalib.models`, `.requests`.
"""

from __future__ import annotations

from typing import Any, MutableMapping, Sequence

import numpy as np
import torch

from ..models import IGNORE_INDEX, encode_answer, family_of, num_video_tokens
from ..models.packing import collate_packed, logits_at, pack, packed_hidden, video_features
from .requests import (
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


def _first_label(labels: Sequence[int]) -> int:
    return next(k for k, y in enumerate(labels) if y != IGNORE_INDEX)


def caption_loglik(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    *,
    batch_size: int = 8,
    method: str = "packed",
    segments_per_pack: int = 32,
    reduction: str = "sum",
    include_eos: bool = True,
    video_cache: MutableMapping | None = None,
    num_frames: int = 8,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Log-likelihood of each caption as the answer to the captioning prompt, given the video (float32).

    The generative diagnostic: log p(caption | video, the family's captioning prompt), tokenized as training
    tokenizes a target (`hacalib.models.text.encode_answer`, after the answer separator).

    Args:
        reduction: "sum" (total log-prob) or "mean" (per target token).
        include_eos: count the EOS that ends the answer (default), so the score is that of exactly this
            answer; without it a caption's prefix scores at least as high as the caption.
        other arguments: as `hacalib.scoring.pyes.p_yes`.
    """
    check_method(method, batch_size, segments_per_pack)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    tok = processor.tokenizer
    template = family_of(model).template
    nvt = num_video_tokens(processor, num_frames)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = model_device(model, device)
    enc = []
    for r in requests:
        e = encode_answer(tok, template.caption_prompt(), r.caption, nvt, template=template)
        labels = e["labels"] if include_eos else e["labels"][:-1] + [IGNORE_INDEX]
        enc.append((e["input_ids"], labels))
    out = np.full(len(requests), np.nan, dtype=np.float32)

    def reduce(lp: torch.Tensor, seg: torch.Tensor, n: int) -> np.ndarray:
        total = torch.zeros(n, dtype=torch.float32, device=lp.device).index_add_(0, seg, lp)
        if reduction == "mean":
            total = total / torch.bincount(seg, minlength=n).clamp(min=1)
        return total.cpu().numpy()

    with torch.inference_mode():
        if method == "naive":
            for idx in chunks(range(len(requests)), batch_size):
                idx = list(idx)
                ids, att = pad_sequences([enc[i][0] for i in idx], tok.pad_token_id, "right")
                lab = torch.full_like(ids, IGNORE_INDEX)
                for r, i in enumerate(idx):
                    lab[r, : len(enc[i][1])] = torch.tensor(enc[i][1])
                logits = naive_logits(model, ids, att, torch.stack([load(requests[i]) for i in idx]), dev)
                lab = lab[:, 1:].to(logits.device)
                rows, cols = (lab != IGNORE_INDEX).nonzero(as_tuple=True)
                lp = torch.log_softmax(logits[rows, cols].float(), -1).gather(1, lab[rows, cols, None])[:, 0]
                out[idx] = reduce(lp, rows, len(idx))
            return out
        units = [list(c) for g in group_by_video(requests) for c in chunks(g, segments_per_pack)]
        for step in chunks(units, batch_size):
            packs, feats_in = [], []
            for idx in step:
                # the whole prompt is common; the segments are the answers
                plen = min(_first_label(enc[i][1]) for i in idx)
                prefix = enc[idx[0]][0][:plen]
                packs.append(pack(prefix, [enc[i][0][plen:] for i in idx], [enc[i][1][plen:] for i in idx]))
                feats_in.append(load(requests[idx[0]]))
            batch = collate_packed(packs, tok.pad_token_id).to(dev)
            hidden = packed_hidden(model, batch, video_features(model, torch.stack(feats_in)))
            logits = logits_at(model, hidden, batch.target_rows, batch.target_cols)
            lp = torch.log_softmax(logits.float(), -1).gather(1, batch.target_ids[:, None])[:, 0]
            flat = [i for idx in step for i in idx]
            out[flat] = reduce(lp, batch.target_segment, len(flat))
    return out


def loglik_forwards(requests: Sequence[ScoreRequest], *, batch_size: int = 8, method: str = "packed",
                    segments_per_pack: int = 32, **_: Any) -> list[list[int]]:
    """Request indices per forward of `caption_loglik` with these settings (its batching, without running a model)."""
    check_method(method, batch_size, segments_per_pack)
    if method == "naive":
        return [list(c) for c in chunks(range(len(requests)), batch_size)]
    return packed_forwards(group_by_video(requests), segments_per_pack, batch_size)
