"""Shared-prefix ("cascade") attention: videos' prefixes through the language model once, then all their segments.

The packed forward (`hacalib.models.packing`) writes one sequence `[prefix | segment 0 | segment 1 | ...]` and
needs a block mask, which takes PyTorch's SDPA off its flash kernel. Cascade attention computes the same
attention without any mask, in two forwards for a batch of videos:

1. **prefix pass**: the videos' prefixes (each video's common tokens, `<video>` features included) as a batch
   of equal-length rows (tokens past the shortest prefix move into that video's segments, which changes no
   attention), causal attention with no mask (the flash kernel); every layer's keys and values (after RoPE)
   are kept (`PrefixKV`);
2. **segment pass**: all segments (caption remainders) of all the videos concatenated into one row without
   padding, so the projections and MLPs see only real tokens, and one pass serves every video of the batch
   (the segment pass of a single video is too small to keep a GPU busy); positions continue from the end of
   the prefix (as `packing.pack` numbers them). Each attention layer combines
   (a) every segment query over its own video's prefix keys/values: one unmasked call with the videos as the
       batch and each video's segment tokens as its queries (right-padded to the video with most; a padding
       query's output is dropped), heads that share a key/value head stacked along the query axis, so the
       prefix K/V are used as they are, never copied per segment or per head, and
   (b) each segment causally over its own keys/values: the segments' q/k/v scattered into a right-padded
       (segments, heads, longest, head dim) grid, one causal call with segments as the batch (pads sit after
       the real tokens, so no real token sees one), gathered back,
   merged exactly with their log-sum-exps (`merge_attention`):
   out = (o1 exp(l1 - m) + o2 exp(l2 - m)) / (exp(l1 - m) + exp(l2 - m)), m = max(l1, l2), in float32.

A segment therefore sees its video's prefix and itself, never another segment: the attention of the packed block
mask.

The hook is transformers' own: an attention function registered in `transformers.AttentionInterface` under
`ATTENTION` and selected by setting the language model config's `_attn_implementation` for the duration of
a call (restored after, also on error); the per-call state reaches every layer through the forward's
kwargs (`cascade=`), which transformers passes on to the attention function. The model's code is not patched.
No attention mask is built: transformers builds none for an implementation without a mask function.

Kernels returning the log-sum-exp (`attention_lse`), first that works per device / dtype / head size:
- CUDA: `aten._scaled_dot_product_flash_attention` (flash, fp16/bf16), else the memory-efficient kernel
  (`aten._scaled_dot_product_efficient_attention`); the prefix pass uses plain causal SDPA (flash);
- CPU: `aten._scaled_dot_product_flash_attention_for_cpu`;
- anywhere: a math implementation in float32 (q k^T, logsumexp) as the last resort.
Each fused kernel is checked once against the math implementation on a small input before it is used.

Inference only (no dropout, no gradient through the kept prefix K/V).

May import: torch, transformers (the attention registry), `.registry`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from transformers import AttentionInterface

from .registry import family_of

ATTENTION = "hacalib_cascade"  # the name under which the attention function is registered


@dataclass
class PrefixKV:
    """Per-layer keys and values of the prefixes, (videos, kv heads, P, head dim) each, keyed by layer index."""

    keys: dict[int, torch.Tensor] = field(default_factory=dict)
    values: dict[int, torch.Tensor] = field(default_factory=dict)
    length: int = 0


@dataclass
class Grid:
    """Where T concatenated tokens sit in a right-padded (rows, width) grid: slot (T,) = row * width + offset."""

    rows: int
    width: int
    slot: torch.Tensor

    @classmethod
    def of(cls, lengths: Sequence[int], device: torch.device | str) -> "Grid":
        width = max(lengths)
        slot = torch.cat([torch.arange(n) + r * width for r, n in enumerate(lengths)])
        return cls(len(lengths), width, slot.to(device))

    def offsets(self) -> torch.Tensor:
        """(T,) each token's offset inside its row."""
        return self.slot % self.width

    def to_rows(self, x: torch.Tensor) -> torch.Tensor:
        """(1, H, T, D) -> (rows, H, width, D), zeros in the padding."""
        heads, d = x.shape[1], x.shape[-1]
        grid = x.new_zeros(heads, self.rows * self.width, d)
        grid[:, self.slot] = x[0]
        return grid.view(heads, self.rows, self.width, d).transpose(0, 1).contiguous()

    def from_rows(self, y: torch.Tensor) -> torch.Tensor:
        """(rows, H, width, ...) -> (1, H, T, ...), the padding dropped."""
        flat = y.transpose(0, 1).reshape(y.shape[1], self.rows * self.width, *y.shape[3:])
        return flat[:, self.slot][None]


@dataclass
class SegmentLayout:
    """The T concatenated segment tokens of a segment pass, by segment (own causal part) and by video (prefix part).

    segments: one grid row per segment; videos: one grid row per video, its segments' tokens in order (rows of
    the prefix batch, same order); ends: (segments,) each segment's last token in T.
    """

    segments: Grid
    videos: Grid
    ends: torch.Tensor

    @classmethod
    def of(cls, lengths: Sequence[int], device: torch.device | str,
           video_of: Sequence[int] | None = None) -> "SegmentLayout":
        """lengths: tokens per segment; video_of: each segment's video (0, 1, ...; a video's segments consecutive,
        videos in order); default: all of one video."""
        video_of = [0] * len(lengths) if video_of is None else list(video_of)
        steps = [b - a for a, b in zip(video_of, video_of[1:])]
        if len(video_of) != len(lengths) or not video_of or video_of[0] != 0 or any(x not in (0, 1) for x in steps):
            raise ValueError(f"video_of must number the segments' videos 0, 1, ... in order, got {video_of}")
        per_video = [0] * (video_of[-1] + 1)
        for v, n in zip(video_of, lengths):
            per_video[v] += n
        ends = torch.tensor(lengths).cumsum(0) - 1
        return cls(Grid.of(lengths, device), Grid.of(per_video, device), ends.to(device))

    def offsets(self) -> torch.Tensor:
        """(T,) each token's offset inside its segment."""
        return self.segments.offsets()


class _Pass:
    """What one forward tells the attention layers: record the prefix (prefix=None) or attend over it."""

    def __init__(self, prefix: PrefixKV | None, layout: SegmentLayout | None = None):
        self.prefix = prefix
        self.layout = layout
        self.recorded = PrefixKV()


# ----------------------------------------------------------------------------- attention with log-sum-exp


def _math(q, k, v, causal, scale):
    s = (q.float() @ k.float().transpose(-1, -2)) * scale
    if causal:
        n, m = s.shape[-2:]
        s = s.masked_fill(torch.ones(n, m, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    return (torch.exp(s - lse[..., None]) @ v.float()).to(q.dtype), lse


def _cuda_flash(q, k, v, causal, scale):
    r = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, False, scale=scale)
    return r[0], r[1]


def _cuda_efficient(q, k, v, causal, scale):
    r = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True, 0.0, causal, scale=scale)
    return r[0], r[1]


def _cpu_flash(q, k, v, causal, scale):
    r = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, scale=scale)
    return r[0], r[1]


def _kernels(q: torch.Tensor) -> list[tuple[str, Callable]]:
    if q.device.type == "cuda":
        fused = [("flash", _cuda_flash)] if q.dtype in (torch.float16, torch.bfloat16) else []
        return fused + [("efficient", _cuda_efficient)]
    if q.device.type == "cpu":
        return [("cpu_flash", _cpu_flash)]
    return []


_USABLE: dict[tuple, bool] = {}  # (kernel, device type, dtype, head dim, causal) -> passed its check


def _as_lse(lse: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The kernel's log-sum-exp as (B, H, Lq) float32 (some kernels pad Lq or add a trailing axis)."""
    if lse.dim() == 4:
        lse = lse[..., 0]
    return lse[..., : q.shape[-2]].float()


def _check(fn: Callable, q: torch.Tensor, causal: bool) -> bool:
    """Whether a fused kernel agrees with `_math` on a small input of q's device, dtype and head size."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    d = q.shape[-1]
    shape_q, shape_k = ((1, 2, 6, d), (1, 2, 6, d)) if causal else ((1, 2, 5, d), (1, 2, 9, d))
    make = lambda s: torch.randn(s, generator=gen).to(q.device, q.dtype)  # noqa: E731
    tq, tk, tv = make(shape_q), make(shape_k), make(shape_k)
    out, lse = fn(tq, tk, tv, causal, d**-0.5)
    ref_out, ref_lse = _math(tq, tk, tv, causal, d**-0.5)
    tol = 1e-4 if q.dtype == torch.float32 else 3e-2
    return bool(torch.allclose(out.float(), ref_out.float(), atol=tol, rtol=tol)
                and torch.allclose(_as_lse(lse, tq), ref_lse, atol=tol, rtol=tol))


def attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                  scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention and its log-sum-exp: (B, H, Lq, D) in q's dtype, (B, H, Lq) float32.

    q, k, v: (B, H, L, D) with the same number of heads; `causal` is the top-left aligned causal mask (Lq == Lk
    where it is used here). The natural-log LSE of the scaled scores of each query row.
    """
    for name, fn in _kernels(q):
        key = (name, q.device.type, q.dtype, q.shape[-1], causal)
        try:
            if key not in _USABLE:
                _USABLE[key] = _check(fn, q, causal)
            if _USABLE[key]:
                out, lse = fn(q, k, v, causal, scale)
                return out, _as_lse(lse, q)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError:  # a kernel that does not take these inputs: the next one
            _USABLE[key] = False
    return _math(q, k, v, causal, scale)


def merge_attention(o1: torch.Tensor, l1: torch.Tensor, o2: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
    """Attention over the union of two disjoint key sets from the attention over each and its log-sum-exp.

    o1, o2: (..., L, D); l1, l2: (..., L). Returns float32 (o1 e^(l1-m) + o2 e^(l2-m)) / (e^(l1-m) + e^(l2-m)).
    """
    m = torch.maximum(l1, l2)
    w1, w2 = torch.exp(l1 - m)[..., None], torch.exp(l2 - m)[..., None]
    return (o1.float() * w1 + o2.float() * w2) / (w1 + w2)


def cascade_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      cascade: _Pass | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """The registered attention function: query (B, H, L, D), key/value (B, KV heads, L, D) -> (B, L, H, D).

    B is the number of videos in the prefix pass and 1 in the segment pass (all segments concatenated;
    `SegmentLayout` says where each one is).
    """
    if cascade is None:
        raise RuntimeError(f"attention {ATTENTION!r} runs only inside hacalib.models.cascade's forwards")
    if attention_mask is not None:
        raise RuntimeError("cascade attention takes no attention mask (a custom 4-D mask reached it)")
    layer = module.layer_idx
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    b, heads, n, d = query.shape
    rep = heads // key.shape[1]
    if cascade.prefix is None:  # prefix pass: keep this layer's K/V, plain causal attention (flash kernel)
        cascade.recorded.keys[layer], cascade.recorded.values[layer] = key, value
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, is_causal=n > 1, scale=scale, enable_gqa=rep > 1)
        return out.transpose(1, 2).contiguous(), None
    if b != 1 or cascade.layout is None:
        raise RuntimeError(f"the segment pass takes one row of concatenated segments, got a batch of {b}")
    pk, pv = cascade.prefix.keys[layer], cascade.prefix.values[layer]
    kv_heads = pk.shape[1]
    layout = cascade.layout
    # (a) every segment token over its video's prefix, one call: (videos, kv heads, rep * tokens, D) queries
    by_video = layout.videos
    q = query if by_video.rows == 1 else by_video.to_rows(query)  # one video: its tokens are the row already
    v_rows, width = q.shape[0], q.shape[2]
    o1, l1 = attention_lse(q.reshape(v_rows, kv_heads, rep * width, d), pk, pv, causal=False, scale=scale)
    o1, l1 = o1.reshape(v_rows, heads, width, d), l1.reshape(v_rows, heads, width)
    if by_video.rows > 1:
        o1, l1 = by_video.from_rows(o1), by_video.from_rows(l1)
    # (b) each segment causally over itself, segments as rows (short: repeating K/V heads costs little)
    if rep > 1:
        key, value = key.repeat_interleave(rep, dim=1), value.repeat_interleave(rep, dim=1)
    grid = layout.segments
    o2, l2 = attention_lse(grid.to_rows(query), grid.to_rows(key), grid.to_rows(value), causal=True, scale=scale)
    out = merge_attention(o1, l1, grid.from_rows(o2), grid.from_rows(l2)).to(query.dtype)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, cascade_attention)


# ----------------------------------------------------------------------------- the two forwards


@contextmanager
def _cascade_attention(lm: torch.nn.Module) -> Iterator[None]:
    """The language model's attention set to `ATTENTION` for the duration (its config's implementation restored)."""
    old = lm.config._attn_implementation
    lm.config._attn_implementation = ATTENTION
    try:
        yield
    finally:
        lm.config._attn_implementation = old


def prefix_kv(model: torch.nn.Module, embeds: torch.Tensor) -> PrefixKV:
    """Run prefixes (videos, P, hidden) through the language model once; their per-layer keys and values."""
    if embeds.dim() != 3 or embeds.shape[1] < 1:
        raise ValueError(f"prefix_kv takes prefixes of shape (videos, P >= 1, hidden), got {tuple(embeds.shape)}")
    lm = family_of(model).language_model(model)
    state = _Pass(None)
    positions = torch.arange(embeds.shape[1], device=embeds.device).expand(embeds.shape[0], -1)
    with _cascade_attention(lm):
        lm(inputs_embeds=embeds, position_ids=positions, use_cache=False, cascade=state)
    state.recorded.length = embeds.shape[1]
    return state.recorded


def segments_hidden(model: torch.nn.Module, prefix: PrefixKV, embeds: torch.Tensor,
                    layout: SegmentLayout) -> torch.Tensor:
    """Last hidden states (1, T, hidden) of segments concatenated into one row (1, T, hidden) after `prefix`."""
    lm = family_of(model).language_model(model)
    positions = (prefix.length + layout.offsets())[None]
    with _cascade_attention(lm):
        out = lm(inputs_embeds=embeds, position_ids=positions, use_cache=False, cascade=_Pass(prefix, layout))
    return out.last_hidden_state


def cascade_hidden(
    model: torch.nn.Module,
    videos: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
    features: torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Last hidden state at each segment's last token, (all segments, hidden): the prefixes once, segments after.

    Args:
        model: a model of a registered family (or its peft wrapper), in eval mode.
        videos: per video (prefix ids, segments): the tokens every sequence of the video starts with (all of its
            placeholder tokens included) and each sequence's remaining tokens (non-empty, no placeholder), as
            `packing.split_prefix` gives them. Segments come back in this order, video after video.
        features: (videos, tokens per video, hidden) each video's features (`packing.video_features`).
        device: where token ids go; default the features' device.
    """
    if not videos or any(not prefix or not segs or any(len(s) == 0 for s in segs) for prefix, segs in videos):
        raise ValueError("cascade_hidden needs videos with a non-empty prefix and non-empty segments")
    if features.shape[0] != len(videos):
        raise ValueError(f"{len(videos)} videos but features for {features.shape[0]}")
    family = family_of(model)
    dev = torch.device(device) if device is not None else features.device
    # one prefix length for the batch: a longer prefix's extra tokens start each of its segments instead
    common = min(len(prefix) for prefix, _ in videos)
    segments = [[*prefix[common:], *s] for prefix, segs in videos for s in segs]
    video_of = [v for v, (_, segs) in enumerate(videos) for _ in segs]
    prefix_ids = torch.tensor([list(prefix[:common]) for prefix, _ in videos], dtype=torch.long, device=dev)
    prefix = prefix_kv(model, family.embed_video(model, prefix_ids, features))
    ids = torch.tensor([[t for s in segments for t in s]], dtype=torch.long, device=dev)
    try:  # segments carry no video features: a placeholder outside the prefix is an error, not a silent zero
        embeds = family.embed_video(model, ids, features.new_empty((1, 0, features.shape[-1])))
    except ValueError as e:
        raise ValueError(f"a segment holds video placeholder tokens; they must all sit in the prefix ({e})") from e
    layout = SegmentLayout.of([len(s) for s in segments], dev, video_of)
    return segments_hidden(model, prefix, embeds, layout)[0, layout.ends]
