"""VideoTextDataset: model inputs from encoded examples + videos, each video processed once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hacalib.errors import DataError
from hacalib.training.collate import pad_collate
from hacalib.training.datasets import VideoTextDataset


def encoded(n_tokens: int) -> dict:
    return {"input_ids": list(range(5, 5 + n_tokens)), "labels": [-100] * (n_tokens - 1) + [9],
            "attention_mask": [1] * n_tokens}


def test_items_carry_tokens_and_the_cached_video(tmp_path):
    calls: list[Path] = []

    def video_fn(path: Path) -> torch.Tensor:
        calls.append(path)
        return torch.full((8, 3, 4, 4), float(len(calls)))

    ds = VideoTextDataset([encoded(3), encoded(5), encoded(4)], ["a.mp4", "b.mp4", "a.mp4"], video_fn, video_root=tmp_path)
    assert len(ds) == 3
    first = ds[0]
    assert first["input_ids"].tolist() == [5, 6, 7] and first["labels"].tolist() == [-100, -100, 9]
    assert first["pixel_values_videos"].shape == (8, 3, 4, 4)
    assert torch.equal(ds[2]["pixel_values_videos"], first["pixel_values_videos"])
    ds[1], ds[0], ds[2]
    assert calls == [tmp_path / "a.mp4", tmp_path / "b.mp4"]  # each video decoded once
    batch = pad_collate([ds[i] for i in range(3)], pad_id=0)
    assert batch["input_ids"].shape == (3, 5) and batch["pixel_values_videos"].shape == (3, 8, 3, 4, 4)


def test_pixel_cache_is_a_bounded_lru():
    calls: list[str] = []

    def video_fn(path: Path) -> torch.Tensor:
        calls.append(path.name)
        return torch.full((1,), float(ord(path.name[0])))

    names = ["a", "b", "a", "c", "b", "a"]
    ds = VideoTextDataset([encoded(3)] * 6, names, video_fn, max_cached_videos=2)
    got = [ds[i]["pixel_values_videos"].item() for i in range(6)]
    assert got == [float(ord(n)) for n in names]  # same items as unbounded
    # a, b cached; a hit (a most recent); c evicts b; b evicts a; a decoded again
    assert calls == ["a", "b", "c", "b", "a"] and ds.decoded == 5 and len(ds._cache) == 2
    none = VideoTextDataset([encoded(3)] * 6, names, video_fn, max_cached_videos=0)
    calls.clear()
    [none[i] for i in range(6)]
    assert calls == names and not none._cache
    with pytest.raises(ValueError, match="max_cached_videos"):
        VideoTextDataset([encoded(3)], ["a"], video_fn, max_cached_videos=-1)


def test_bad_encodings_name_the_source_and_row():
    bad = encoded(3)
    bad["labels"] = bad["labels"][:2]
    with pytest.raises(DataError, match=r"ex\.jsonl, row 1: input_ids and labels differ"):
        VideoTextDataset([encoded(3), bad], ["a", "b"], lambda p: torch.zeros(1), source="ex.jsonl")
    with pytest.raises(DataError, match=r"row 0: encoded example lacks \['labels'\]"):
        VideoTextDataset([{"input_ids": [1], "attention_mask": [1]}], ["a"], lambda p: torch.zeros(1), source="ex.jsonl")
    with pytest.raises(ValueError, match="2 encoded examples but 1 video"):
        VideoTextDataset([encoded(3), encoded(3)], ["a"], lambda p: torch.zeros(1))


def test_packed_loss_equals_the_separate_sequences_loss(tmp_path):
    """One packed sequence per video gives the same token- and sequence-mean loss as padded separate rows."""
    from functools import partial

    from hacalib.models import build_toy_model, num_video_tokens, processed_video_fn
    from hacalib.toyworld import build_world
    from hacalib.training.collate import packed_collate
    from hacalib.training.datasets import PackedVideoDataset
    from hacalib.training.examples import encode
    from hacalib.training.loss import masked_lm_loss, target_loss
    from hacalib.training.pretrain import (
        PRETRAIN_FILE,
        VIDEO_DIR,
        load_pretrain_records,
        pretrain_examples,
        toy_vocabulary,
    )

    world = tmp_path / "world"
    build_world(world, size="smoke", seed=0)
    examples = pretrain_examples(load_pretrain_records(world / PRETRAIN_FILE))[:20]  # 3 videos
    model, processor = build_toy_model(toy_vocabulary(world), seed=0)
    model.eval()
    tok = processor.tokenizer
    encoded = [encode(e, tok, num_video_tokens(processor, 8)) for e in examples]
    args = (encoded, [e.video for e in examples], processed_video_fn(processor, 8))
    flat = VideoTextDataset(*args, video_root=world / VIDEO_DIR)
    packed = PackedVideoDataset(*args, video_root=world / VIDEO_DIR, max_segments=5)
    assert len(packed) < len(flat) and sum(len(it[1].spans) for it in packed.items) == len(flat)
    # the prefix is the prompt up to where the questions differ: BOS, USER, :, the 136 video tokens
    assert packed.items[0][1].prefix_len >= 136

    batch = pad_collate([flat[i] for i in range(len(flat))], tok.pad_token_id)
    labels = batch.pop("labels")
    pbatch = partial(packed_collate, pad_id=tok.pad_token_id)([packed[i] for i in range(len(packed))])
    targets, segments = pbatch.pop("target_labels"), pbatch.pop("target_segments")
    assert pbatch["input_ids"].numel() < 0.6 * batch["input_ids"].numel()
    with torch.no_grad():
        logits, plogits = model(**batch).logits, model(**pbatch).logits
    for reduction in ("token", "sequence"):
        ref = masked_lm_loss(logits, labels, reduction)
        got = target_loss(plogits, targets, segments, reduction)
        assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5), (reduction, got, ref)
