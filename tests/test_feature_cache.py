"""Frozen vision features cached in LoRA fine-tuning: same loss and gradients, the tower once per video."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from hacalib.config import TrainConfig
from hacalib.errors import DataError
from hacalib.models import add_lora, build_toy_model, num_video_tokens
from hacalib.training.collate import packed_collate
from hacalib.training.datasets import PackedVideoDataset
from hacalib.training.examples import build_examples, encode
from hacalib.training.feature_cache import VisionFeatureCache, vision_is_frozen
from hacalib.training.loop import train
from hacalib.training.loss import batch_loss, target_loss
from hacalib.training.masking import WordClassTagger

NOUNS, VERBS, ADJ = ["circle", "square", "star"], ["moves", "jumps", "grows"], ["red", "blue", "green", "big"]
WORDS = NOUNS + VERBS + ADJ + ["a", "the", "left", "right", "then"]
CLASSES = {**{w: "NOUN" for w in NOUNS}, **{w: "VERB" for w in VERBS}, **{w: "ADJ" for w in ADJ},
           "a": "DET", "the": "DET", "left": "ADV", "right": "ADV", "then": "ADV"}
# float32 on the CPU; the cached path differs from the uncached one only in summation order
RTOL, ATOL = 1e-5, 1e-6


def caption(rng: np.random.Generator) -> str:
    return f"the {rng.choice(ADJ)} {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(['left', 'right'])}"


def lora_toy(seed: int = 0):
    """Toy Video-LLaVA with LoRA (no dropout, B initialised away from zero so every adapter weight gets a gradient)."""
    model, processor = build_toy_model(WORDS, seed=seed)
    model.requires_grad_(False)
    torch.manual_seed(seed)
    model = add_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model, processor


def packed_data(processor, n_videos: int = 3, seed: int = 0) -> PackedVideoDataset:
    """n_videos random videos, each with HACA-mask's 3 targets (Yes / No + correction / masked reconstruction)."""
    rng = np.random.default_rng(seed)
    triplets = [{"video": f"v{i}.mp4", "description": caption(rng), "correction": caption(rng)} for i in range(n_videos)]
    examples = build_examples("haca_mask", triplets, tagger=WordClassTagger(CLASSES.__getitem__), seed=seed)
    n_video = num_video_tokens(processor, 8)
    encoded = [encode(e, processor.tokenizer, n_video) for e in examples]
    g = torch.Generator().manual_seed(seed)
    pixels = {t["video"]: torch.randn(8, 3, 32, 32, generator=g) for t in triplets}
    return PackedVideoDataset(encoded, [e.video for e in examples], lambda path: pixels[path.name])


def collate(processor, dataset, keys: bool = True) -> dict:
    return packed_collate([dataset[i] for i in range(len(dataset))], processor.tokenizer.pad_token_id, video_keys=keys)


def lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def tower_counter(model) -> list[int]:
    """Counts videos through the video tower (it sees one row per frame, 8 frames per video)."""
    seen: list[int] = []
    tower = model.get_base_model().model.video_tower
    tower.register_forward_hook(lambda mod, args, kwargs, out: seen.append(args[0].shape[0] // 8) if args else
                                seen.append(kwargs["pixel_values"].shape[0] // 8), with_kwargs=True)
    return seen


def test_cached_loss_and_lora_gradients_equal_the_uncached_forward():
    model, processor = lora_toy()
    model.train()
    assert vision_is_frozen(model)
    batch = collate(processor, packed_data(processor))
    assert batch["video_keys"] == ["v0.mp4", "v1.mp4", "v2.mp4"] and len(batch["target_labels"]) == 3

    # reference: the plain forward on pixels with full logits, as before the cache
    plain = {k: v for k, v in batch.items() if k not in ("target_labels", "target_segments", "video_keys")}
    for reduction in ("token", "sequence"):
        model.zero_grad()
        ref = target_loss(model(**plain).logits, batch["target_labels"], batch["target_segments"], reduction)
        ref.backward()
        ref_grads = lora_grads(model)
        cache = VisionFeatureCache()
        for run in range(2):  # first run fills the cache, second reads it
            model.zero_grad()
            loss = batch_loss(model, batch, reduction, vision_cache=cache)
            loss.backward()
            torch.testing.assert_close(loss, ref, rtol=RTOL, atol=ATOL)
            got = lora_grads(model)
            assert got.keys() == ref_grads.keys() and len(got) > 0
            for name in ref_grads:
                assert ref_grads[name].abs().max() > 0, name
                torch.testing.assert_close(got[name], ref_grads[name], rtol=RTOL, atol=ATOL, msg=name)
        assert cache.tower_videos == 3 and len(cache) == 3


def run_two_epochs(tmp_path, model, processor, cache, name: str):
    dataset = packed_data(processor)
    # 3 videos, 3 videos per step: each step is one epoch
    cfg = TrainConfig(max_steps=2, batch_size=len(dataset), lr=1e-3, warmup_steps=0, checkpoint_every=100,
                      output_dir=str(tmp_path / name))
    collate_fn = partial(packed_collate, pad_id=processor.tokenizer.pad_token_id, video_keys=True)
    return train(model, dataset, cfg, collate_fn=collate_fn, progress=False, vision_cache=cache)


def test_vision_tower_runs_once_per_video_across_two_epochs(tmp_path):
    model, processor = lora_toy()
    seen = tower_counter(model)
    cache = VisionFeatureCache()
    cached = run_two_epochs(tmp_path, model, processor, cache, "cached")
    assert sum(seen) == 3 and cache.tower_videos == 3

    model, processor = lora_toy()
    seen = tower_counter(model)
    plain = run_two_epochs(tmp_path, model, processor, None, "plain")
    assert sum(seen) == 6  # without the cache: every video, every epoch
    np.testing.assert_allclose(cached.losses, plain.losses, rtol=RTOL, atol=ATOL)


def test_a_training_vision_tower_falls_back_to_pixels(tmp_path):
    model, processor = lora_toy()
    model.get_base_model().model.multi_modal_projector.requires_grad_(True)
    assert not vision_is_frozen(model)
    seen = tower_counter(model)
    with pytest.warns(UserWarning, match="feature cache is not used"):
        run_two_epochs(tmp_path, model, processor, VisionFeatureCache(), "fallback")
    assert sum(seen) == 6


def test_active_dropout_in_the_tower_is_not_frozen():
    model, _ = lora_toy()
    for m in model.get_base_model().model.video_tower.modules():
        if isinstance(getattr(m, "dropout", None), float):
            m.dropout = 0.1
    model.train()
    assert not vision_is_frozen(model)
    model.eval()
    assert vision_is_frozen(model)


def test_features_persist_on_disk_keyed_by_video_and_model(tmp_path):
    model, processor = lora_toy()
    batch = collate(processor, packed_data(processor))
    keys, pixels = batch["video_keys"], batch["pixel_values_videos"]
    first = VisionFeatureCache("frames=8", directory=tmp_path / "feats")
    feats = first.features(model, keys, pixels)
    assert first.tower_videos == 3 and len(list((tmp_path / "feats").glob("*.safetensors"))) == 3

    again = VisionFeatureCache("frames=8", directory=tmp_path / "feats")
    assert torch.equal(again.features(model, keys, pixels), feats)
    assert again.tower_videos == 0 and again.disk_hits == 3

    other = VisionFeatureCache("frames=16", directory=tmp_path / "feats")  # other preprocessing: recomputed
    other.features(model, keys[:1], pixels[:1])
    assert other.tower_videos == 1

    retrained, _ = lora_toy(seed=1)  # other vision weights: recomputed
    changed = VisionFeatureCache("frames=8", directory=tmp_path / "feats")
    changed.features(retrained, keys[:1], pixels[:1])
    assert changed.tower_videos == 1

    for f in (tmp_path / "feats").glob("*.safetensors"):
        f.write_bytes(b"not safetensors")
    with pytest.raises(DataError, match=r"\.safetensors.*v0\.mp4.*unreadable cached video features"):
        VisionFeatureCache("frames=8", directory=tmp_path / "feats").features(model, keys, pixels)


def test_repeated_keys_in_a_batch_run_the_tower_once():
    model, processor = lora_toy()
    batch = collate(processor, packed_data(processor, n_videos=1))
    pixels = batch["pixel_values_videos"].expand(2, -1, -1, -1, -1)
    cache = VisionFeatureCache()
    feats = cache.features(model, ["v0.mp4", "v0.mp4"], pixels)
    assert cache.tower_videos == 1 and torch.equal(feats[0], feats[1])
    with pytest.raises(ValueError, match="2 video keys for 1 videos"):
        cache.features(model, ["a", "b"], pixels[:1])


def test_lru_bound_evicts_and_recomputes_or_reloads_from_disk(tmp_path):
    model, processor = lora_toy()
    batch = collate(processor, packed_data(processor))
    keys, pixels = batch["video_keys"], batch["pixel_values_videos"]
    full = VisionFeatureCache().features(model, keys, pixels)

    small = VisionFeatureCache(max_videos=2)
    for i in range(3):
        small.features(model, keys[i:i + 1], pixels[i:i + 1])
    assert len(small) == 2 and not small.has("v0.mp4") and small.has("v1.mp4") and small.has("v2.mp4")
    small.features(model, keys[1:2], pixels[1:2])  # a hit makes v1 the most recently used: v2 goes next
    small.features(model, keys[:1], pixels[:1])
    assert small.tower_videos == 4 and small.has("v0.mp4") and small.has("v1.mp4") and not small.has("v2.mp4")
    assert torch.equal(small.features(model, keys, pixels), full)  # v2 recomputed; the batch outlives evictions
    assert small.tower_videos == 5 and len(small) == 2

    none = VisionFeatureCache(max_videos=0)
    assert torch.equal(none.features(model, keys, pixels), full) and len(none) == 0 and none.tower_videos == 3

    disk = VisionFeatureCache(directory=tmp_path / "feats", max_videos=1)
    disk.features(model, keys, pixels)
    assert disk.tower_videos == 3 and len(disk) == 1
    assert all(disk.has(k) for k in keys)  # evicted from memory, still on disk
    # evicted videos come back from disk, without pixels
    got = disk.features(model, keys, None, pixel_rows=[])
    assert torch.equal(got, full) and disk.tower_videos == 3 and disk.disk_hits == 2

    with pytest.raises(ValueError, match="v0.mp4.*neither cached nor computable"):
        VisionFeatureCache().features(model, keys[:1], None, pixel_rows=[])
    with pytest.raises(ValueError, match="max_videos"):
        VisionFeatureCache(max_videos=-1)


def test_skipped_pixels_of_cached_videos_give_the_same_loss():
    model, processor = lora_toy()
    dataset = packed_data(processor)
    ref = batch_loss(model, collate(processor, dataset), vision_cache=VisionFeatureCache())

    cache = VisionFeatureCache(max_videos=2)
    dataset.need_pixels = lambda key: not cache.has(key)
    dataset._videos.max_cached_videos = 0  # as finetune sets it: no pixel cache, every decode counted
    dataset._videos._cache.clear()
    calls = []
    video_fn = dataset._videos.video_fn
    dataset._videos.video_fn = lambda path: calls.append(path.name) or video_fn(path)
    first = collate(processor, dataset)
    assert "pixel_rows" not in first and first["pixel_values_videos"].shape[0] == 3
    assert torch.equal(batch_loss(model, first, vision_cache=cache), ref)
    second = collate(processor, dataset)  # v1 and v2 cached: only v0 decoded
    assert second["pixel_rows"] == [0] and second["pixel_values_videos"].shape[0] == 1
    assert torch.equal(batch_loss(model, second, vision_cache=cache), ref)
    assert calls.count("v0.mp4") == 2 and calls.count("v1.mp4") == calls.count("v2.mp4") == 1
    with pytest.raises(ValueError, match="no feature cache"):
        batch_loss(model, second)
    dataset.need_pixels = lambda key: False
    with pytest.raises(ValueError, match="need video_keys"):
        collate(processor, dataset, keys=False)


def test_a_tiny_feature_bound_trains_to_the_same_losses(tmp_path):
    model, processor = lora_toy()
    bounded = VisionFeatureCache(max_videos=1)
    seen = tower_counter(model)
    small = run_two_epochs(tmp_path, model, processor, bounded, "bounded")
    assert sum(seen) == 3 + 2 and bounded.tower_videos == 5  # the 2 evicted videos recomputed in epoch 2

    model, processor = lora_toy()
    full = run_two_epochs(tmp_path, model, processor, VisionFeatureCache(), "full")
    assert small.losses == full.losses
