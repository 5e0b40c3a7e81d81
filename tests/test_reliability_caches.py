"""Bounded in-memory caches in LoRA fine-tuning: a run whose pixel and feature caches hold one video ends with the
same adapter as one whose caches hold every video (the evicted videos are decoded and run through the tower again,
or read back from the on-disk feature cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hacalib.training.finetune
from hacalib.config import ModelConfig, TrainConfig
from hacalib.models import build_toy_model, save_model
from hacalib.toyworld import build_world, word_class
from hacalib.training.feature_cache import VisionFeatureCache
from hacalib.training.finetune import finetune
from hacalib.training.masking import WordClassTagger
from hacalib.training.pretrain import toy_vocabulary

pytestmark = pytest.mark.slow

TRAIN = {"objective": "haca", "seed": 0, "max_steps": 6, "batch_size": 8, "warmup_steps": 1, "lr": 2e-3,
         "log_every": 1, "checkpoint_every": 1000}
# 48 packed items over the smoke world's 35 training videos: 13 videos come back in the second epoch
MODEL = ModelConfig(preset="toy", dtype="float32", lora_r=4, lora_alpha=8, lora_dropout=0.0)


@pytest.fixture(scope="module")
def world_and_base(tmp_path_factory) -> tuple[Path, Path]:
    world = tmp_path_factory.mktemp("world")
    build_world(world, size="smoke", seed=0)
    model, processor = build_toy_model(toy_vocabulary(world), seed=0)
    return world, save_model(model, processor, tmp_path_factory.mktemp("base") / "toy")


def _run(world: Path, base: Path, out: Path, **train) -> list[float]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        finetune(base, world, TrainConfig(**TRAIN, **train), MODEL, out, tagger=WordClassTagger(word_class),
                 progress=False)
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("train", [
    {"max_cached_features": 1},  # evicted features recomputed from freshly decoded pixels
    {"max_cached_features": 1, "vision_cache_dir": "feats"},  # evicted features read back from disk
    {"cache_vision_features": False, "max_cached_videos": 1},  # pixel LRU
], ids=["features-recomputed", "features-from-disk", "pixels"])
def test_tiny_cache_bounds_train_the_same_adapter(world_and_base, tmp_path, monkeypatch, train):
    world, base = world_and_base
    caches: list[VisionFeatureCache] = []

    class Recorded(VisionFeatureCache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            caches.append(self)

    monkeypatch.setattr(hacalib.training.finetune, "VisionFeatureCache", Recorded)
    reference = {k: v for k, v in train.items() if k == "cache_vision_features"}
    ref = _run(world, base, tmp_path / "ref", **reference)
    if "vision_cache_dir" in train:
        train = {**train, "vision_cache_dir": str(tmp_path / train["vision_cache_dir"])}
    got = _run(world, base, tmp_path / "small", **train)
    assert got == ref and len(got) == TRAIN["max_steps"]
    if train.get("cache_vision_features", True):
        ref_cache, small = caches
        assert ref_cache.tower_videos == 35 and len(ref_cache) == 35  # each video through the tower once
        assert len(small) == 1
        if "vision_cache_dir" in train:  # the tower once per video, the returning videos read back from disk
            assert small.tower_videos == 35 and small.disk_hits > 0
        else:  # the returning videos decoded and run through the tower again
            assert small.tower_videos > 35 and small.disk_hits == 0
    name = "adapter_model.safetensors"
    assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    if "vision_cache_dir" in train:
        assert len(list(Path(train["vision_cache_dir"]).glob("*.safetensors"))) > 1
