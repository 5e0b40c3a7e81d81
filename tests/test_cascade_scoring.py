"""Cascade (shared-prefix) attention: the merged attention on literal tensors, and P(yes) equal to naive and packed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hacalib import prompts
from hacalib.models import family_of
from hacalib.models.cascade import (
    ATTENTION,
    Grid,
    PrefixKV,
    SegmentLayout,
    _math,
    _Pass,
    attention_lse,
    cascade_attention,
    cascade_hidden,
    merge_attention,
)
from hacalib.models.packing import PREFIX, dense_mask
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest

# the toy model, frames and captions of the packed-scoring tests, so both compare the same inputs
from test_score import ATOL, CAPTIONS, frames, lora_toy, toy  # noqa: E402,F401  (fixtures)


def _three_ways(model, proc, reqs, **cascade_kw):
    naive = p_yes(model, proc, reqs, method="naive", batch_size=1)
    packed = p_yes(model, proc, reqs, method="packed")
    cascade = p_yes(model, proc, reqs, method="cascade", **cascade_kw)
    assert cascade.dtype == np.float32 and not np.isnan(cascade).any()
    np.testing.assert_allclose(cascade, naive, atol=ATOL, rtol=0)
    np.testing.assert_allclose(cascade, packed, atol=ATOL, rtol=0)
    return cascade


# ----------------------------------------------------------------------------- P(yes) on the toy model


def test_one_caption_per_video(toy, frames):
    model, proc = toy
    reqs = [ScoreRequest(frames[i], CAPTIONS[i], video_id=f"v{i}") for i in range(3)]
    _three_ways(model, proc, reqs)


def test_several_captions_of_different_lengths(toy, frames):
    model, proc = toy
    # videos interleaved; v2's captions all start with "the red", so its shared prefix reaches into the captions
    reqs = [ScoreRequest(frames[i % 2], c, video_id=f"v{i % 2}") for i, c in enumerate(CAPTIONS)]
    reqs += [ScoreRequest(frames[2], c, video_id="v2") for c in ["the red circle", "the red square grows quickly",
                                                                  "the red triangle moves left then it shrinks"]]
    got = _three_ways(model, proc, reqs)
    assert np.ptp(got) > 1e-4  # the captions give different scores, so a mix-up would show
    # one video per forward, two, all three (prefixes of different lengths in one batch): the same scores
    for batch_size in (1, 2):
        np.testing.assert_allclose(p_yes(model, proc, reqs, method="cascade", batch_size=batch_size), got,
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("per_pass,batch_size", [(1, 8), (2, 1), (4, 2)])
def test_more_captions_than_segments_per_pack(toy, frames, per_pass, batch_size):
    model, proc = toy
    reqs = [ScoreRequest(frames[0], c, video_id="v0") for c in CAPTIONS]
    reqs += [ScoreRequest(frames[1], c, video_id="v1") for c in CAPTIONS[:3]]
    _three_ways(model, proc, reqs, segments_per_pack=per_pass, batch_size=batch_size)


def test_attention_implementation_is_restored_and_segments_must_not_hold_video(toy, frames):
    model, proc = toy
    lm = family_of(model).language_model(model)
    before = lm.config._attn_implementation
    tok = proc.tokenizer
    video = tok.convert_tokens_to_ids(prompts.VIDEO_TOKEN)
    feats = torch.zeros(1, 3, lm.config.hidden_size)
    with pytest.raises(ValueError, match="segment holds video placeholder"):
        cascade_hidden(model, [([tok.bos_token_id, video, video, video], [[5, 6], [video, 7]])], feats)
    with pytest.raises(ValueError, match="2 videos but features for 1"):
        cascade_hidden(model, [([tok.bos_token_id, video, video, video], [[5, 6]])] * 2, feats)
    assert lm.config._attn_implementation == before != ATTENTION
    p_yes(model, proc, [ScoreRequest(frames[0], "a triangle", video_id="v0")], method="cascade")
    assert lm.config._attn_implementation == before
    with pytest.raises(RuntimeError, match="only inside"):  # the registered function refuses a plain forward
        cascade_attention(SimpleNamespace(layer_idx=0), *([torch.zeros(1, 1, 2, 4)] * 3), None)


# ----------------------------------------------------------------------------- the mechanism on literal tensors


def test_merge_of_two_key_sets_equals_attention_over_their_union():
    q = torch.tensor([[[[1.0, 0.0], [0.5, -2.0]]]])  # (1, 1, 2, 2)
    k = torch.tensor([[[[2.0, 1.0], [0.0, 3.0], [-1.0, 1.0], [4.0, -4.0], [0.5, 0.5]]]])
    v = torch.tensor([[[[1.0, 2.0], [3.0, -1.0], [0.0, 0.0], [5.0, 1.0], [-2.0, 2.0]]]])
    full, full_lse = _math(q, k, v, False, 1.0)
    o1, l1 = _math(q, k[..., :2, :], v[..., :2, :], False, 1.0)
    o2, l2 = _math(q, k[..., 2:, :], v[..., 2:, :], False, 1.0)
    torch.testing.assert_close(merge_attention(o1, l1, o2, l2), full, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(torch.logaddexp(l1, l2), full_lse, atol=1e-6, rtol=0)
    # first row by hand: scores 2, 0 | -1, 4, 0.5
    s = torch.tensor([2.0, 0.0, -1.0, 4.0, 0.5])
    torch.testing.assert_close(full[0, 0, 0], torch.softmax(s, 0) @ v[0, 0], atol=1e-6, rtol=0)


def test_attention_lse_kernel_equals_math():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=gen) for n in (5, 7, 7))
    for causal, kk, vv in ((False, k, v), (True, k[..., :5, :], v[..., :5, :])):
        out, lse = attention_lse(q, kk, vv, causal=causal, scale=0.4)
        ref_out, ref_lse = _math(q, kk, vv, causal, 0.4)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
        torch.testing.assert_close(lse, ref_lse, atol=1e-5, rtol=0)
        assert lse.shape == (2, 3, 5) and lse.dtype == torch.float32


def _dense_reference(prefix_k, prefix_v, q, k, v, lengths, scale, leaky=False):
    """Segment queries' attention (heads, T, D) over the packed sequence [prefix | seg 0 | seg 1 ...], block mask.

    prefix_k/v (1, kv heads, P, D), q (1, heads, T, D), k/v (1, kv heads, T, D): one video's tensors."""
    heads, rep, p = q.shape[1], q.shape[1] // prefix_k.shape[1], prefix_k.shape[2]
    keys = torch.cat([prefix_k[0], k[0]], dim=1).repeat_interleave(rep, 0)
    vals = torch.cat([prefix_v[0], v[0]], dim=1).repeat_interleave(rep, 0)
    queries = torch.cat([torch.zeros(heads, p, q.shape[-1]), q[0]], dim=1)
    seg = torch.tensor([PREFIX] * p + [s for s, n in enumerate(lengths) for _ in range(n)])
    mask = dense_mask(seg[None])[0, 0]
    if leaky:  # the wrong mechanism: a segment also sees earlier segments
        mask = torch.ones_like(mask).tril()
    scores = (queries @ keys.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
    return (torch.softmax(scores, -1) @ vals)[:, p:]


def test_grid_and_segment_layout():
    grid = Grid.of([2, 3, 1], "cpu")
    assert grid.slot.tolist() == [0, 1, 3, 4, 5, 6] and grid.offsets().tolist() == [0, 1, 0, 1, 2, 0]
    x = torch.arange(12.0).reshape(1, 2, 6, 1)
    rows = grid.to_rows(x)
    assert rows.shape == (3, 2, 3, 1)
    assert rows[1, 0, :, 0].tolist() == [2.0, 3.0, 4.0] and rows[2, 1, :, 0].tolist() == [11.0, 0.0, 0.0]
    torch.testing.assert_close(grid.from_rows(rows), x)
    layout = SegmentLayout.of([2, 3, 1], "cpu", video_of=[0, 0, 1])
    assert layout.ends.tolist() == [1, 4, 5] and layout.offsets().tolist() == [0, 1, 0, 1, 2, 0]
    assert (layout.videos.rows, layout.videos.width) == (2, 5) and layout.videos.slot.tolist() == [0, 1, 2, 3, 4, 5]
    for bad in ([0, 1, 0], [1, 1, 1], [0, 2, 2], [0, 0]):  # out of order, not from 0, a gap, too short
        with pytest.raises(ValueError, match="video_of"):
            SegmentLayout.of([2, 3, 1], "cpu", video_of=bad)


@pytest.mark.parametrize("kv_heads", [2, 1])  # 1: grouped-query attention, two query heads per K/V head
def test_merged_attention_equals_one_dense_masked_attention(kv_heads):
    gen = torch.Generator().manual_seed(1)
    heads, d, p, lengths = 2, 4, 3, [2, 3, 1]
    t = sum(lengths)
    prefix_k, prefix_v = (torch.randn(1, kv_heads, p, d, generator=gen) for _ in range(2))
    q = torch.randn(1, heads, t, d, generator=gen)
    k, v = (torch.randn(1, kv_heads, t, d, generator=gen) for _ in range(2))
    module = SimpleNamespace(layer_idx=0)
    state = _Pass(PrefixKV({0: prefix_k}, {0: prefix_v}, p), SegmentLayout.of(lengths, "cpu"))
    out, _ = cascade_attention(module, q, k, v, None, scaling=0.7, cascade=state)
    assert out.shape == (1, t, heads, d)
    got = out[0].transpose(0, 1)  # (heads, T, D)
    torch.testing.assert_close(got, _dense_reference(prefix_k, prefix_v, q, k, v, lengths, 0.7), atol=1e-5, rtol=0)
    # the reference tells a segment that sees another segment apart (segments 1 and 2 follow others)
    leaky = _dense_reference(prefix_k, prefix_v, q, k, v, lengths, 0.7, leaky=True)
    for start, end in ((2, 5), (5, 6)):
        assert not torch.allclose(got[:, start:end], leaky[:, start:end], atol=1e-3)


@pytest.mark.parametrize("kv_heads", [2, 1])
def test_segments_of_several_videos_see_only_their_own_prefix(kv_heads):
    gen = torch.Generator().manual_seed(3)
    heads, d, p = 2, 4, 3
    lengths, video_of = [2, 3, 1, 2], [0, 0, 1, 1]  # video 0: segments 0-1 (5 tokens), video 1: 2-3 (3 tokens)
    t = sum(lengths)
    prefix_k, prefix_v = (torch.randn(2, kv_heads, p, d, generator=gen) for _ in range(2))
    q = torch.randn(1, heads, t, d, generator=gen)
    k, v = (torch.randn(1, kv_heads, t, d, generator=gen) for _ in range(2))
    state = _Pass(PrefixKV({0: prefix_k}, {0: prefix_v}, p), SegmentLayout.of(lengths, "cpu", video_of))
    out, _ = cascade_attention(SimpleNamespace(layer_idx=0), q, k, v, None, scaling=0.6, cascade=state)
    got = out[0].transpose(0, 1)  # (heads, T, D)
    for video, (start, end), segs in ((0, (0, 5), [2, 3]), (1, (5, 8), [1, 2])):
        ref = _dense_reference(prefix_k[video : video + 1], prefix_v[video : video + 1], q[..., start:end, :],
                               k[..., start:end, :], v[..., start:end, :], segs, 0.6)
        torch.testing.assert_close(got[:, start:end], ref, atol=1e-5, rtol=0)
    # video 1's tokens over video 0's prefix would differ: the check can tell the prefixes apart
    wrong = _dense_reference(prefix_k[:1], prefix_v[:1], q[..., 5:, :], k[..., 5:, :], v[..., 5:, :], [1, 2], 0.6)
    assert not torch.allclose(got[:, 5:], wrong, atol=1e-3)


def test_prefix_pass_records_keys_and_is_causal():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 4, 3, generator=gen) for _ in range(3))
    state = _Pass(None)
    out, _ = cascade_attention(SimpleNamespace(layer_idx=5), q, k, v, None, scaling=0.5, cascade=state)
    assert state.recorded.keys[5] is k and state.recorded.values[5] is v
    ref, _ = _math(q, k, v, True, 0.5)
    torch.testing.assert_close(out, ref.transpose(1, 2), atol=1e-6, rtol=0)


def test_lora_wrapped_model_and_methods_elsewhere(frames):
    from hacalib.scoring.loglik import caption_loglik

    model, proc, peft_model = lora_toy()
    reqs = [ScoreRequest(frames[i % 2], c, video_id=f"v{i % 2}") for i, c in enumerate(CAPTIONS)]
    cascade = _three_ways(peft_model, proc, reqs)
    with peft_model.disable_adapter():
        base = p_yes(peft_model, proc, reqs, method="cascade")
    assert np.abs(base - cascade).max() > 1e-3  # the adapters are used by the cascade path
    with pytest.raises(ValueError, match="unknown scoring method"):  # only P(yes) has a cascade path
        caption_loglik(model, proc, reqs, method="cascade")
