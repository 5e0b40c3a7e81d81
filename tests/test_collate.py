"""The collator only pads: literal token lists in, literal padded tensors out."""

from __future__ import annotations

import pytest
import torch

from hacalib.training.collate import pad_collate


def _feat(ids, labels):
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}


def test_right_padding_with_literal_lists():
    out = pad_collate([_feat([1, 5, 6, 7], [-100, -100, 7, 2]), _feat([1, 8], [-100, 2])], pad_id=0)
    assert out["input_ids"].tolist() == [[1, 5, 6, 7], [1, 8, 0, 0]]
    assert out["labels"].tolist() == [[-100, -100, 7, 2], [-100, 2, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert all(v.dtype == torch.long for v in out.values())
    assert set(out) == {"input_ids", "labels", "attention_mask"}


def test_left_padding():
    out = pad_collate([_feat([1, 5, 6], [-100, 6, 2]), _feat([1], [2])], pad_id=9, padding_side="left")
    assert out["input_ids"].tolist() == [[1, 5, 6], [9, 9, 1]]
    assert out["labels"].tolist() == [[-100, 6, 2], [-100, -100, 2]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_stacks_videos_and_keeps_them_on_cpu():
    feats = [dict(_feat([1, 2], [-100, 2]), pixel_values_videos=torch.full((8, 3, 4, 4), float(i))) for i in range(3)]
    out = pad_collate(feats, pad_id=0)
    assert out["pixel_values_videos"].shape == (3, 8, 3, 4, 4)
    assert out["pixel_values_videos"][2].eq(2.0).all()
    assert out["pixel_values_videos"].device.type == "cpu"


def test_rejects_bad_features():
    with pytest.raises(ValueError, match="different lengths"):
        pad_collate([{"input_ids": [1, 2], "labels": [2], "attention_mask": [1, 1]}], pad_id=0)
    with pytest.raises(ValueError, match="does not pad"):
        pad_collate([dict(_feat([1], [2]), kind="pos")], pad_id=0)
    with pytest.raises(ValueError, match="some features"):
        pad_collate([dict(_feat([1], [2]), pixel_values_videos=torch.zeros(1)), _feat([1], [2])], pad_id=0)
    with pytest.raises(ValueError):
        pad_collate([], pad_id=0)
