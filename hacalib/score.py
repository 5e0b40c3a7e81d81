"""P(yes) and caption log-likelihood scorers: the naive reference way and the packed prefix-reuse way.

P(yes) = p(Yes) / (p(Yes) + p(No)) at the first answer position: the last token of the entailment prompt,
whose next token is the answer in training (`hacalib.examples.encode` puts `ANSWER_SEP` + target right
after the prompt, and the prompt's tokens are its own tokenization). The Yes/No ids come from
`examples.answer_token_ids`. Computed in float32 as sigmoid(logit_yes - logit_no), which equals the ratio
of the two softmax probabilities without underflow when both are tiny.

Two methods, the same numbers (tests: within 1e-5 in float32):
- "naive": one padded batch of full sequences, each pair with its own copy of the video, the vision
  tower and the full lm_head per pair (the reference codebases' way);
- "packed" (default): requests grouped by video, one packed sequence per video (`hacalib.packing`),
  the vision tower once per video, the lm_head only at the answer positions.

`score_to_file` writes results per completed video (append + fsync) and skips finished videos on restart.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, MutableMapping, Sequence

import numpy as np
import torch

from . import prompts
from .errors import DataError
from .examples import Example, answer_token_ids, encode
from .io import atomic_path
from .metrics import is_collapsed, pyes_spread
from .packing import collate_packed, logits_at, pack, packed_hidden, split_prefix, video_features

METHODS = ("packed", "naive")
RESULT_COLUMNS = ("request", "video_id", "caption", "score")


@dataclass(frozen=True)
class ScoreRequest:
    """One (video, caption) pair to score.

    video: a video file path, or decoded frames (T, H, W, 3) uint8 as a numpy array.
    caption: the description (P(yes)) or the caption whose likelihood is wanted.
    video_id: grouping key; default the path (frames: the array object itself, so pass the same array
        for captions of the same video, or give a `video_id`; `score_to_file` needs a path or an id).
    """

    video: Any
    caption: str
    video_id: str | None = None

    def key(self) -> Any:
        if self.video_id is not None:
            return self.video_id
        if isinstance(self.video, (str, Path)):
            return str(self.video)
        return ("frames", id(self.video))


class VideoLoader:
    """Request -> processed video tensor (T, 3, H, W), decoded once per video and kept in `cache`.

    Args:
        processor: the model's `VideoLlavaProcessor`.
        num_frames: frames sampled per video file.
        cache: a dict the caller may keep between calls (video key -> tensor); None: a private one.
    """

    def __init__(self, processor: Any, num_frames: int = 8, cache: MutableMapping | None = None):
        from .datasets import processed_video_fn

        self.processor = processor
        self.cache = {} if cache is None else cache
        self._from_file = processed_video_fn(processor, num_frames)

    def __call__(self, request: ScoreRequest) -> torch.Tensor:
        key = request.key()
        if key not in self.cache:
            if isinstance(request.video, (str, Path)):
                self.cache[key] = self._from_file(Path(request.video))
            else:
                from .models import preprocess_videos

                self.cache[key] = preprocess_videos(self.processor, [np.asarray(request.video)])[0]
        return self.cache[key]


def prompt_ids(tokenizer: Any, prompt_texts: Sequence[str], num_video_tokens: int) -> list[list[int]]:
    """Token ids of each prompt as `examples.encode` builds the prompt part for training, `<video>` expanded.

    `encode` tokenizes the prompt on its own (and checks that the answer does not merge into it), so the
    prompt's ids here are the same; one batched tokenizer call instead of one per prompt.
    """
    video_id = tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN)
    out = []
    for i, ids in enumerate(tokenizer(list(prompt_texts)).input_ids):
        where = [k for k, t in enumerate(ids) if t == video_id]
        if len(where) != 1:
            raise ValueError(f"prompt {i} has {len(where)} {prompts.VIDEO_TOKEN} tokens, expected one")
        k = where[0]
        out.append(ids[:k] + [video_id] * num_video_tokens + ids[k + 1 :])
    return out


def _first_label(labels: Sequence[int]) -> int:
    return next(k for k, y in enumerate(labels) if y != -100)


def _groups(requests: Sequence[ScoreRequest]) -> list[list[int]]:
    """Request indices grouped by video, videos in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.key(), []).append(i)
    return list(groups.values())


def _device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


def _pad(seqs: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) padded on `side`."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[r, sl] = torch.tensor(s, dtype=torch.long)
        att[r, sl] = 1
    return ids, att


def _naive_logits(model, ids, att, pv, device) -> torch.Tensor:
    """Full forward of a padded batch; positions from the mask so left padding changes nothing."""
    position_ids = (att.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=ids.to(device), attention_mask=att.to(device), position_ids=position_ids.to(device),
        pixel_values_videos=pv.to(device, next(model.parameters()).dtype), use_cache=False,
    )
    return out.logits


def _pyes(logits: torch.Tensor, yes: int, no: int) -> torch.Tensor:
    logits = logits.float()
    return torch.sigmoid(logits[:, yes] - logits[:, no])


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _check_args(method: str, batch_size: int, segments_per_pack: int) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown scoring method {method!r}; choose one of {METHODS}")
    if batch_size < 1 or segments_per_pack < 1:
        raise ValueError(f"batch_size and segments_per_pack must be >= 1, got {batch_size}, {segments_per_pack}")


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
) -> Iterator[tuple[Any, list[int], np.ndarray]]:
    """Yield (video key, request indices, P(yes)) per video as soon as all its captions are scored.

    Arguments as `p_yes`; `skip` holds video keys not to score (already done).
    """
    _check_args(method, batch_size, segments_per_pack)
    for i, r in enumerate(requests):  # a blank description would still get a P(yes): never a silent score
        if not isinstance(r.caption, str) or not r.caption.strip():
            raise ValueError(f"request {i} (video {r.key()!r}) has an empty caption {r.caption!r}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    tok = processor.tokenizer
    from .models import num_video_tokens

    nvt = num_video_tokens(processor, num_frames)
    yes, no = answer_token_ids(tok)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = _device(model, device)
    groups = [g for g in _groups(requests) if not skip or requests[g[0]].key() not in skip]
    todo = [i for g in groups for i in g]
    texts = [prompts.entail_prompt(requests[i].caption) for i in todo]
    seq = dict(zip(todo, prompt_ids(tok, texts, nvt))) if todo else {}  # request index -> prompt ids

    # Work units: (group number, request indices); naive: batch_size pairs, packed: one packed sequence.
    per_unit = batch_size if method == "naive" else segments_per_pack
    units = [(gi, list(c)) for gi, g in enumerate(groups) for c in _chunks(g, per_unit)]
    units_per_forward = 1 if method == "naive" else batch_size
    results: dict[int, float] = {}
    remaining = [len(g) for g in groups]
    with torch.inference_mode():
        for step in _chunks(units, units_per_forward):
            if method == "naive":
                (gi, idx), = step
                ids, att = _pad([seq[i] for i in idx], tok.pad_token_id, padding_side)
                pv = torch.stack([load(requests[i]) for i in idx])
                logits = _naive_logits(model, ids, att, pv, dev)
                # the last real token: the end of each row under right padding, the last column under left
                last = att.sum(dim=1) - 1 if padding_side == "right" else torch.full((len(idx),), att.shape[1] - 1)
                scores = _pyes(logits[torch.arange(len(idx)), last.to(logits.device)], yes, no)
                done = [(gi, idx)]
            else:
                packs, vids, row_vid = [], {}, []  # vids: group -> (feature row, one of its requests)
                for gi, idx in step:
                    prefix, segs = split_prefix([seq[i] for i in idx])
                    packs.append(pack(prefix, segs))
                    vids.setdefault(gi, (len(vids), idx[0]))
                    row_vid.append(vids[gi][0])
                batch = collate_packed(packs, tok.pad_token_id).to(dev)
                # chunks of one video in the same forward share one run of the vision tower
                feats = video_features(model, torch.stack([load(requests[i]) for _, i in vids.values()]))
                hidden = packed_hidden(model, batch, feats[torch.tensor(row_vid, device=feats.device)])
                scores = _pyes(logits_at(model, hidden, batch.answer_rows, batch.answer_cols), yes, no)
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
) -> np.ndarray:
    """P(yes) of every request, float32, in request order.

    Args:
        model: a Video-LLaVA model (or peft wrapper), in eval mode, on its device.
        processor: its `VideoLlavaProcessor`.
        requests: the (video, caption) pairs.
        batch_size: "naive": pairs of one video per forward; "packed": packed sequences (video chunks)
            per forward.
        method: "packed" (default, prefix reuse) or "naive" (full sequence per pair).
        segments_per_pack: "packed": most captions in one packed sequence (a video with more captions is
            split into several packed sequences, each with the prefix).
        padding_side: "naive" only: "right" or "left" (results do not depend on it).
        video_cache: dict of processed videos kept by the caller between calls (key: `ScoreRequest.key()`).
        num_frames: frames sampled per video file.
        device: where inputs go; default the model's device.
    """
    out = np.full(len(requests), np.nan, dtype=np.float32)
    for _, idx, scores in iter_pyes(
        model, processor, requests, batch_size=batch_size, method=method, segments_per_pack=segments_per_pack,
        padding_side=padding_side, video_cache=video_cache, num_frames=num_frames, device=device,
    ):
        out[idx] = scores
    return out


def summarize(scores: Sequence[float], tol: float = 1e-3) -> dict:
    """P(yes) spread (`metrics.pyes_spread`) plus `collapsed` (`metrics.is_collapsed`), for tables."""
    return {**pyes_spread(scores), "collapsed": is_collapsed(scores, tol)}


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

    The generative diagnostic: log p(caption | video, `prompts.caption_prompt()`), tokenized as
    `examples.encode` tokenizes a target (after `ANSWER_SEP`).

    Args:
        reduction: "sum" (total log-prob) or "mean" (per target token).
        include_eos: count the EOS that ends the answer (default), so the score is that of exactly this
            answer; without it a caption's prefix scores at least as high as the caption.
        other arguments: as `p_yes`.
    """
    _check_args(method, batch_size, segments_per_pack)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    from .models import num_video_tokens

    tok = processor.tokenizer
    nvt = num_video_tokens(processor, num_frames)
    load = VideoLoader(processor, num_frames, video_cache)
    dev = _device(model, device)
    enc = []
    for r in requests:
        e = encode(Example(None, prompts.caption_prompt(), r.caption, "caption"), tok, nvt)
        labels = e["labels"] if include_eos else e["labels"][:-1] + [-100]
        enc.append((e["input_ids"], labels))
    out = np.full(len(requests), np.nan, dtype=np.float32)

    def reduce(lp: torch.Tensor, seg: torch.Tensor, n: int) -> np.ndarray:
        total = torch.zeros(n, dtype=torch.float32, device=lp.device).index_add_(0, seg, lp)
        if reduction == "mean":
            total = total / torch.bincount(seg, minlength=n).clamp(min=1)
        return total.cpu().numpy()

    with torch.inference_mode():
        if method == "naive":
            for idx in _chunks(range(len(requests)), batch_size):
                idx = list(idx)
                ids, att = _pad([enc[i][0] for i in idx], tok.pad_token_id, "right")
                lab = torch.full_like(ids, -100)
                for r, i in enumerate(idx):
                    lab[r, : len(enc[i][1])] = torch.tensor(enc[i][1])
                logits = _naive_logits(model, ids, att, torch.stack([load(requests[i]) for i in idx]), dev)
                lab = lab[:, 1:].to(logits.device)
                rows, cols = (lab != -100).nonzero(as_tuple=True)
                lp = torch.log_softmax(logits[rows, cols].float(), -1).gather(1, lab[rows, cols, None])[:, 0]
                out[idx] = reduce(lp, rows, len(idx))
            return out
        units = [list(c) for g in _groups(requests) for c in _chunks(g, segments_per_pack)]
        for step in _chunks(units, batch_size):
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


# ----------------------------------------------------------------------------- resumable scoring to a file


def _read_done(path: Path, requests: Sequence[ScoreRequest]) -> dict[int, float]:
    """Rows of completed videos in an earlier, possibly interrupted, results file; checked against requests."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a line torn by the interruption
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    if tuple(rows[0]) != RESULT_COLUMNS:
        problem = f"header {rows[0]} is not {list(RESULT_COLUMNS)}; not a results file of score_to_file"
        raise DataError(path, problem, row=0)
    done: dict[int, float] = {}
    for r, row in enumerate(rows[1:], start=1):
        if len(row) != len(RESULT_COLUMNS):
            raise DataError(path, f"expected {len(RESULT_COLUMNS)} fields, found {len(row)}", row=r)
        try:
            i, score = int(row[0]), float(row[3])
        except ValueError as exc:
            raise DataError(path, f"bad request index or score: {exc}", row=r) from exc
        if not 0 <= i < len(requests) or str(requests[i].key()) != row[1] or requests[i].caption != row[2]:
            problem = "row does not match the requests being scored (different inputs?); use a new file"
            raise DataError(path, problem, row=r, key="request")
        done[i] = score
    return done


def score_to_file(
    model: torch.nn.Module,
    processor: Any,
    requests: Sequence[ScoreRequest],
    out_csv: str | Path,
    **kwargs: Any,
) -> np.ndarray:
    """P(yes) of every request, also written to `out_csv`, resumable per video.

    Each video's rows (`request,video_id,caption,score`) are appended and fsync'ed as soon as the video is
    done. Started again on the same file, it keeps the complete videos (rows checked against `requests`),
    drops a partly written one, and scores only the rest. Every request needs a stable key (a path or a
    `video_id`). Keyword arguments go to `p_yes`. Returns all scores in request order (float32).
    """
    path = Path(out_csv)
    for i, r in enumerate(requests):
        if not isinstance(r.key(), str):
            raise ValueError(f"request {i} has frames and no video_id: score_to_file needs a stable key to resume")
    done = _read_done(path, requests) if path.is_file() else {}
    complete = {k for k, g in ((requests[g[0]].key(), g) for g in _groups(requests)) if all(i in done for i in g)}
    done = {i: s for i, s in done.items() if requests[i].key() in complete}
    # rewrite what is kept (drops a torn line or a partial video), atomically, then append
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(RESULT_COLUMNS)
            for i in done:  # in the order of the file, so a resumed file equals an uninterrupted one
                w.writerow([i, requests[i].key(), requests[i].caption, f"{done[i]:.9g}"])
    out = np.full(len(requests), np.nan, dtype=np.float32)
    for i, s in done.items():
        out[i] = s
    with path.open("a", encoding="utf-8", newline="") as f:
        for key, idx, scores in iter_pyes(model, processor, requests, skip=complete, **kwargs):
            buf = io.StringIO()
            w = csv.writer(buf)
            for i, s in zip(idx, scores):
                w.writerow([i, key, requests[i].caption, f"{s:.9g}"])
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
            out[idx] = scores
    return out
