"""VideoTextDataset: model inputs from encoded examples + videos, each video processed once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hacalib.collate import pad_collate
from hacalib.datasets import VideoTextDataset
from hacalib.errors import DataError


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


def test_bad_encodings_name_the_source_and_row():
    bad = encoded(3)
    bad["labels"] = bad["labels"][:2]
    with pytest.raises(DataError, match=r"ex\.jsonl, row 1: input_ids and labels differ"):
        VideoTextDataset([encoded(3), bad], ["a", "b"], lambda p: torch.zeros(1), source="ex.jsonl")
    with pytest.raises(DataError, match=r"row 0: encoded example lacks \['labels'\]"):
        VideoTextDataset([{"input_ids": [1], "attention_mask": [1]}], ["a"], lambda p: torch.zeros(1), source="ex.jsonl")
    with pytest.raises(ValueError, match="2 encoded examples but 1 video"):
        VideoTextDataset([encoded(3), encoded(3)], ["a"], lambda p: torch.zeros(1))
