"""`hacalib.models.VideoStore`: processed videos shared across models, only where that cannot change a result."""

from __future__ import annotations

import numpy as np
import torch

from hacalib.models import VideoStore, build_toy_processor, processing_fingerprint
from hacalib.scoring.requests import ScoreRequest, VideoLoader

WORDS = ["a", "red", "circle", "moves", "left"]


def test_a_shelf_never_keeps_videos_known_only_by_object_id():
    processor = build_toy_processor(WORDS)
    shelf = VideoStore().shelf(processor, "velociti")
    load = VideoLoader(processor, 8, shelf)
    rng = np.random.default_rng(0)
    for _ in range(3):  # arrays made and dropped in turn may reuse one id: a kept tensor could answer for another
        frames = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        expected = VideoLoader(processor, 8)(ScoreRequest(frames, "a red circle"))
        assert torch.equal(load(ScoreRequest(frames, "a red circle")), expected)
        del frames
    assert len(shelf) == 0
    shelf["some/video.mp4"] = torch.zeros(1)  # a file's key is kept
    assert list(shelf) == ["some/video.mp4"]


def test_processors_that_differ_get_different_shelves():
    small, large = build_toy_processor(WORDS), build_toy_processor(WORDS, image_size=64, patch_size=8)
    assert processing_fingerprint(small) == processing_fingerprint(build_toy_processor(WORDS))
    assert processing_fingerprint(small) != processing_fingerprint(large)
    assert processing_fingerprint(small, 8) != processing_fingerprint(small, 4)
    store = VideoStore()
    assert store.shelf(small, "qa") is store.shelf(build_toy_processor(WORDS), "qa")
    assert store.shelf(small, "qa") is not store.shelf(large, "qa")
    assert store.shelf(small, "qa") is not store.shelf(small, "ssv2")
