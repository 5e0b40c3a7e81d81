"""One packed sequence per video: the mechanism scoring and training share (PROTOCOL.md, "Packed scoring" and "Packed training").

A video's sequences (one per caption or target) all start with the same tokens: `USER: <video>...` with
the video's hundreds to thousands of tokens. Packing writes that common **prefix once**, then every
sequence's remainder as a **segment**:

    [ prefix (causal) | segment 0 | segment 1 | ... ]

- a segment attends to the whole prefix and causally to itself, never to another segment
  (a block attention mask, `mask_mod`);
- position ids restart at `len(prefix)` for every segment, so each token sees exactly the positions
  (RoPE) and the context it would see in its own unpacked sequence;
- the token that predicts a segment's first token is the prefix's last token, not the previous segment's
  last token, so next-token targets are gathered explicitly (`Packed.target_index`), not by shifting.

Forward pass (`packed_hidden`): the vision side runs once per video (`video_features`), the features enter
the token embeddings at the video placeholder positions as the model's own forward puts them there, and the
language model is called with `inputs_embeds`, a 4-D attention mask and the packed `position_ids`
(transformers passes a user 4-D mask through unchanged). The output head is applied by the caller only where
logits are needed (`logits_at`): for scoring, one row per segment. Every model-specific step is the model
family's (`hacalib.models.family`).

May import: torch, `.family`, `.text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .family import unwrap  # noqa: F401  (re-exported for callers of the packed forward)
from .registry import family_of
from .text import IGNORE_INDEX

PREFIX = -1  # segment id of prefix tokens
PAD = -2  # segment id of padding (a pad token attends to earlier pads only, so no row is fully masked)


@dataclass
class Packed:
    """One packed sequence (1-D tensors of length L = prefix + all segments).

    Attributes:
        input_ids: token ids.
        position_ids: 0..P-1 over the prefix, then P.. again for every segment.
        segment_ids: PREFIX (-1) on the prefix, i on segment i.
        spans: [start, end) of each segment in the packed sequence.
        answer_index: per segment, the position whose logits predict its first answer token: the last
            segment token when there are no labels (scoring), else the predictor of the first labelled token.
        target_index, target_ids, target_segment: one entry per labelled token: the position whose logits
            predict it, the token id, its segment (empty without labels).
        prefix_len: P.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segment_ids: torch.Tensor
    spans: list[tuple[int, int]]
    answer_index: torch.Tensor
    target_index: torch.Tensor
    target_ids: torch.Tensor
    target_segment: torch.Tensor
    prefix_len: int

    def __len__(self) -> int:
        return int(self.input_ids.numel())

    def dense_mask(self) -> torch.Tensor:
        """(L, L) bool, True where query row may attend to key column."""
        return dense_mask(self.segment_ids[None])[0, 0]


def pack(
    prefix_ids: Sequence[int],
    segments: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]] | None = None,
) -> Packed:
    """Pack a shared prefix and the remainders of several sequences into one sequence.

    Args:
        prefix_ids: the tokens common to every sequence (at least one token: it predicts each segment's
            first token).
        segments: each sequence's tokens after the prefix (each non-empty).
        labels: optional, one list per segment aligned with its tokens (HF convention: the label of token
            t is token t's own id, or -100 where there is no target). The labelled tokens become
            (`target_index`, `target_ids`); prefix tokens never carry labels.
    """
    if not prefix_ids:
        raise ValueError("pack needs a non-empty prefix (its last token predicts each segment's first token)")
    if not segments:
        raise ValueError("pack needs at least one segment")
    if labels is not None and len(labels) != len(segments):
        raise ValueError(f"{len(labels)} label lists for {len(segments)} segments")
    p = len(prefix_ids)
    ids, pos, seg = list(prefix_ids), list(range(p)), [PREFIX] * p
    spans, answer, t_index, t_ids, t_seg = [], [], [], [], []
    for i, s in enumerate(segments):
        if len(s) == 0:
            raise ValueError(f"segment {i} is empty")
        start = len(ids)
        ids.extend(s)
        pos.extend(range(p, p + len(s)))
        seg.extend([i] * len(s))
        spans.append((start, start + len(s)))
        if labels is None:
            answer.append(start + len(s) - 1)
            continue
        lab = labels[i]
        if len(lab) != len(s):
            raise ValueError(f"segment {i} has {len(s)} tokens but {len(lab)} labels")
        first = None
        for k, y in enumerate(lab):
            if y == IGNORE_INDEX:
                continue
            # the token before offset 0 of a segment is the prefix's last token
            predictor = p - 1 if k == 0 else start + k - 1
            t_index.append(predictor)
            t_ids.append(int(y))
            t_seg.append(i)
            first = predictor if first is None else first
        if first is None:
            raise ValueError(f"segment {i} has no labelled token")
        answer.append(first)
    long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return Packed(long(ids), long(pos), long(seg), spans, long(answer), long(t_index), long(t_ids), long(t_seg), p)


def split_prefix(sequences: Sequence[Sequence[int]], *, keep: int = 1) -> tuple[list[int], list[list[int]]]:
    """Split sequences into their longest common prefix and the remainders.

    Args:
        sequences: token lists (e.g. the prompts of one video, `<video>` already expanded).
        keep: leave at least this many tokens in every remainder (1 for scoring: the last prompt token
            must sit in the segment so each caption reads its own answer position).
    """
    if not sequences:
        raise ValueError("no sequences to split")
    n = min(len(s) for s in sequences) - keep
    # the common prefix of all sequences is that of the lexicographically smallest and largest
    lo, hi = min(map(list, sequences)), max(map(list, sequences))
    common = 0
    while common < n and lo[common] == hi[common]:
        common += 1
    first = sequences[0]
    if common < 1:
        raise ValueError("sequences share no prefix token to pack behind")
    return list(first[:common]), [list(s[common:]) for s in sequences]


@dataclass
class PackedBatch:
    """Several packed sequences padded (right) to one length, as (B, L) tensors.

    Attributes:
        input_ids, position_ids, segment_ids: (B, L); padding has segment id PAD and the pad token.
        answer_rows, answer_cols: flat coordinates of every segment's answer position, in pack order.
        target_rows, target_cols, target_ids, target_segment: flat coordinates and ids of every labelled
            token; target_segment numbers segments over the whole batch (pack order), as answer_rows does.
        segments_per_pack: how many segments each packed sequence holds.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segment_ids: torch.Tensor
    answer_rows: torch.Tensor
    answer_cols: torch.Tensor
    target_rows: torch.Tensor
    target_cols: torch.Tensor
    target_ids: torch.Tensor
    target_segment: torch.Tensor
    segments_per_pack: list[int]

    def to(self, device: torch.device | str) -> "PackedBatch":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return PackedBatch(**moved)


def collate_packed(packs: Sequence[Packed], pad_id: int) -> PackedBatch:
    """Right-pad packed sequences into a batch (no device moves)."""
    if not packs:
        raise ValueError("collate_packed got no packed sequences")
    width = max(len(p) for p in packs)
    ids, pos, seg = [], [], []
    a_rows, a_cols, t_rows, t_cols, t_ids, t_seg = [], [], [], [], [], []
    offset = 0
    for r, p in enumerate(packs):
        extra = width - len(p)
        ids.append(torch.cat([p.input_ids, torch.full((extra,), pad_id, dtype=torch.long)]))
        # pads continue the positions so the rotary embedding sees ordinary values
        last = int(p.position_ids.max()) + 1
        pos.append(torch.cat([p.position_ids, torch.arange(last, last + extra, dtype=torch.long)]))
        seg.append(torch.cat([p.segment_ids, torch.full((extra,), PAD, dtype=torch.long)]))
        a_rows.append(torch.full_like(p.answer_index, r))
        a_cols.append(p.answer_index)
        t_rows.append(torch.full_like(p.target_index, r))
        t_cols.append(p.target_index)
        t_ids.append(p.target_ids)
        t_seg.append(p.target_segment + offset)
        offset += len(p.spans)
    cat = torch.cat
    return PackedBatch(
        torch.stack(ids), torch.stack(pos), torch.stack(seg),
        cat(a_rows), cat(a_cols), cat(t_rows), cat(t_cols), cat(t_ids), cat(t_seg),
        [len(p.spans) for p in packs],
    )


def mask_mod(segment_ids: torch.Tensor) -> Callable:
    """The block mask as a FlexAttention `mask_mod(b, h, q, kv)` over (B, L) segment ids.

    q may see kv when kv <= q and either both are in the same segment (prefix with prefix, segment i with
    segment i, pad with pad) or kv is in the prefix and q is not padding.
    """

    def mod(b, h, q, kv):
        sq, sk = segment_ids[b, q], segment_ids[b, kv]
        return (kv <= q) & ((sq == sk) | ((sk == PREFIX) & (sq != PAD)))

    return mod


def dense_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) bool mask (True = attend) from (B, L) segment ids; the same rule as `mask_mod`."""
    length = segment_ids.shape[1]
    idx = torch.arange(length, device=segment_ids.device)
    sq, sk = segment_ids[:, :, None], segment_ids[:, None, :]
    causal = idx[None, None, :] <= idx[None, :, None]
    return (causal & ((sq == sk) | ((sk == PREFIX) & (sq != PAD))))[:, None]


def attention_mask_for(segment_ids: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> Any:
    """The block mask in the form the language model's attention implementation takes as a custom mask.

    Args:
        segment_ids: (B, L) from a `PackedBatch`.
        attn_implementation: the text config's `_attn_implementation`: 'sdpa' takes a bool mask,
            'eager' adds the mask to the scores (so 0 / most negative float), 'flex_attention' takes a
            `BlockMask` (the dense L x L mask is never built).
        dtype: the model's compute dtype (for the additive eager mask).
    """
    if attn_implementation == "flex_attention":
        from torch.nn.attention.flex_attention import create_block_mask

        b, length = segment_ids.shape
        return create_block_mask(mask_mod(segment_ids), b, None, length, length, device=segment_ids.device)
    mask = dense_mask(segment_ids)
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        return torch.where(mask, zero, torch.finfo(dtype).min)
    if attn_implementation == "sdpa":
        return mask
    raise ValueError(
        f"no packed mask for attention implementation {attn_implementation!r} (use sdpa, eager or flex_attention)"
    )


# ----------------------------------------------------------------------------- the forward pass


def video_embeds(model: torch.nn.Module, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Token embeddings (B, L, hidden) with each row's video features at its video placeholder positions.

    Args:
        model: a model of a registered family (or a peft / DDP wrapper of one).
        input_ids: (B, L) token ids, each row with as many placeholder tokens as a video has features.
        features: (B, tokens per video, hidden) the video features of each row.
    """
    return family_of(model).embed_video(model, input_ids, features)


def video_features(model: torch.nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
    """Video features (n_videos, tokens per video, hidden) as they enter the language model, once per video.

    Args:
        model: a model of a registered family (or its peft wrapper).
        pixel_values_videos: (n_videos, T, 3, H, W) from the family's processor.
    """
    return family_of(model).video_features(model, pixel_values_videos)


def packed_hidden(model: torch.nn.Module, batch: PackedBatch, features: torch.Tensor) -> torch.Tensor:
    """Last hidden states (B, L, hidden) of a packed batch.

    Args:
        model: a model of a registered family (or its peft wrapper).
        batch: the packed sequences (on the model's device).
        features: (B, tokens per video, hidden) video features of each row's video (from `video_features`;
            rows of the same video may share one computed tensor).
    """
    family = family_of(model)
    embeds = family.embed_video(model, batch.input_ids, features)
    mask = attention_mask_for(batch.segment_ids, family.attn_implementation(model), embeds.dtype)
    lm = family.language_model(model)
    out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=batch.position_ids, use_cache=False)
    return out.last_hidden_state


def logits_at(model: torch.nn.Module, hidden: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The output head applied only at the given (row, col) positions: (n, vocab) in the model's dtype."""
    return family_of(model).lm_head(model)(hidden[rows, cols])
