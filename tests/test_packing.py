"""Packing: literal layouts, the block mask, and packed == separate sequences on the toy Video-LLaVA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hacalib import prompts
from hacalib.models import build_toy_model, num_video_tokens, preprocess_videos
from hacalib.models.packing import (
    PAD,
    PREFIX,
    collate_packed,
    dense_mask,
    logits_at,
    pack,
    packed_hidden,
    split_prefix,
    video_features,
)
from hacalib.training.examples import Example, encode
from hacalib.training.loss import masked_lm_loss

WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it".split()
# float32 on CPU: packed and separate differ only by summation order (measured ~5e-7 on logits of size ~1)
ATOL = 1e-5


def test_pack_literal_layout():
    p = pack([7, 8, 9], [[1, 2], [3], [4, 5, 6]])
    assert p.input_ids.tolist() == [7, 8, 9, 1, 2, 3, 4, 5, 6]
    assert p.position_ids.tolist() == [0, 1, 2, 3, 4, 3, 3, 4, 5]
    assert p.segment_ids.tolist() == [PREFIX] * 3 + [0, 0, 1, 2, 2, 2]
    assert p.spans == [(3, 5), (5, 6), (6, 9)]
    assert p.answer_index.tolist() == [4, 5, 8]  # last token of each segment
    assert p.target_index.numel() == 0


def test_pack_labels_gather_from_own_sequence():
    # segment 0: labels on its 2nd and 3rd token; segment 1: on its first token (predicted by the prefix end)
    p = pack([7, 8], [[1, 2, 3], [4, 5]], labels=[[-100, 2, 3], [4, 5]])
    assert p.target_ids.tolist() == [2, 3, 4, 5]
    assert p.target_index.tolist() == [2, 3, 1, 5]
    assert p.target_segment.tolist() == [0, 0, 1, 1]
    assert p.answer_index.tolist() == [2, 1]


def test_pack_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty prefix"):
        pack([], [[1]])
    with pytest.raises(ValueError, match="segment 1 is empty"):
        pack([1], [[2], []])
    with pytest.raises(ValueError, match="no labelled token"):
        pack([1], [[2]], labels=[[-100]])
    with pytest.raises(ValueError, match="2 tokens but 1 labels"):
        pack([1], [[2, 3]], labels=[[3]])


def test_split_prefix_keeps_a_token_per_segment():
    prefix, rest = split_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3]])
    assert prefix == [1, 2] and rest == [[3, 4], [3, 5, 6], [3]]
    prefix, rest = split_prefix([[1, 2, 3], [1, 2, 3]], keep=1)
    assert prefix == [1, 2] and rest == [[3], [3]]
    with pytest.raises(ValueError, match="no prefix"):
        split_prefix([[1, 2], [2, 2]])


def test_dense_mask_literal():
    seg = torch.tensor([[PREFIX, PREFIX, 0, 0, 1, PAD]])
    m = dense_mask(seg)[0, 0].int().tolist()
    assert m == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],  # segment 1 sees the prefix and itself, not segment 0
        [0, 0, 0, 0, 0, 1],  # a pad sees only pads: no fully masked row
    ]


@pytest.fixture(scope="module")
def toy():
    return build_toy_model(WORDS, seed=0)


def _videos(n: int) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(n)]


CAPTIONS = [
    ["a red circle moves left", "the blue square grows quickly then it shrinks", "a triangle"],
    ["a green square moves up slowly", "it grows"],
    ["the red triangle moves down then it moves right quickly"],
]


def _encoded(tok, nvt, caption, target="Yes"):
    return encode(Example("v", prompts.entail_prompt(caption), target, "pos"), tok, nvt)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_logits_equal_separate_sequences(toy, impl):
    model, proc = toy
    tok, nvt = proc.tokenizer, num_video_tokens(proc, 8)
    pv = preprocess_videos(proc, _videos(len(CAPTIONS)))
    lm_config = model.model.language_model.config
    old = lm_config._attn_implementation
    lm_config._attn_implementation = impl
    try:
        packs, ref = [], []
        with torch.no_grad():
            for v, caps in enumerate(CAPTIONS):
                seqs = [_encoded(tok, nvt, c)["input_ids"] for c in caps]
                prefix, segs = split_prefix(seqs)
                assert len(prefix) > nvt  # the whole video block is shared
                packs.append(pack(prefix, segs))
                for s in seqs:
                    ref.append(model(input_ids=torch.tensor([s]), pixel_values_videos=pv[v : v + 1]).logits[0, len(prefix) :])
            batch = collate_packed(packs, tok.pad_token_id)
            hidden = packed_hidden(model, batch, video_features(model, pv))
            got = []
            for r, p in enumerate(packs):
                for s, e in p.spans:
                    cols = torch.arange(s, e)
                    got.append(logits_at(model, hidden, torch.full_like(cols, r), cols))
    finally:
        lm_config._attn_implementation = old
    assert len(got) == len(ref) == 6
    assert len({g.shape[0] for g in got}) > 2  # segments of different lengths
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, atol=ATOL, rtol=0)


def test_packed_training_loss_and_gradients_equal_separate(toy):
    model, proc = toy
    tok, nvt = proc.tokenizer, num_video_tokens(proc, 8)
    pv = preprocess_videos(proc, _videos(1))
    caps = ["a red circle moves left", "the blue square grows", "a triangle"]
    targets = ["Yes", "No, a red circle moves left", "No"]
    enc = [_encoded(tok, nvt, c, t) for c, t in zip(caps, targets)]
    weight = model.lm_head.weight

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return weight.grad.clone()

    # separate sequences: one padded batch, token-mean loss
    from hacalib.training.collate import pad_collate

    b = pad_collate([{**e} for e in enc], tok.pad_token_id)
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], pixel_values_videos=pv.expand(3, -1, -1, -1, -1))
    ref_loss = masked_lm_loss(out.logits, b["labels"])
    ref_grad = grads(ref_loss)

    plen = min(e["labels"].index(next(y for y in e["labels"] if y != -100)) for e in enc)
    prefix, _ = split_prefix([e["input_ids"][:plen] for e in enc], keep=0)
    p = len(prefix)
    packed = pack(prefix, [e["input_ids"][p:] for e in enc], [e["labels"][p:] for e in enc])
    batch = collate_packed([packed], tok.pad_token_id)
    hidden = packed_hidden(model, batch, video_features(model, pv))
    logits = logits_at(model, hidden, batch.target_rows, batch.target_cols)
    loss = torch.nn.functional.cross_entropy(logits.float(), batch.target_ids)
    got_grad = grads(loss)
    assert batch.target_ids.numel() == sum(sum(y != -100 for y in e["labels"]) for e in enc) == 2 + 8 + 2
    torch.testing.assert_close(loss, ref_loss, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_grad, ref_grad, atol=ATOL, rtol=1e-4)
