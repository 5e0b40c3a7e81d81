"""The model-family interface: every model-specific fact reached through `family_of`, Video-LLaVA's answers."""

import pytest
import torch

from hacalib import prompts
from hacalib.models import (
    VIDEOLLAVA_7B_HUB_ID,
    add_lora,
    build_toy_model,
    family_of,
    get_family,
    load_model,
    num_video_tokens,
    save_model,
)
from hacalib.models.family import VideoLLMFamily
from hacalib.models.videollava import VIDEO_LLAVA

WORDS = "a red circle moves left".split()


@pytest.fixture(scope="module")
def toy():
    return build_toy_model(WORDS, seed=0)


def test_family_of_model_wrapper_config_and_processor(toy):
    model, processor = toy
    assert family_of(model) is VIDEO_LLAVA and family_of(model.config) is VIDEO_LLAVA
    assert family_of(processor) is VIDEO_LLAVA and get_family("video_llava") is VIDEO_LLAVA
    wrapped = add_lora(model, r=2, alpha=4, seed=0)
    assert family_of(wrapped) is VIDEO_LLAVA
    with pytest.raises(TypeError, match="no model family for Linear"):
        family_of(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        get_family("nope")


def test_video_llava_answers(toy):
    model, processor = toy
    fam = VIDEO_LLAVA
    assert fam.template is prompts.VIDEO_LLAVA and fam.template.entail_prompt(" a dog ") == prompts.entail_prompt("a dog")
    assert num_video_tokens(processor, 8) == fam.num_video_tokens(processor, 8) == 8 * (16 + 1)
    pixels = torch.zeros(2, 8, 3, 32, 32)
    feats = fam.video_features(model, pixels)
    assert feats.shape == (2, 136, model.config.text_config.hidden_size)
    ids = torch.tensor([[1] + [model.config.video_token_id] * 136 + [2]] * 2)
    embeds = fam.embed_video(model, ids, feats)
    assert torch.equal(embeds[:, 1:137], feats) and embeds.shape == (2, 138, feats.shape[-1])
    with pytest.raises(ValueError, match="<video> tokens"):
        fam.embed_video(model, ids[:, :-10], feats)
    assert fam.attn_implementation(model) in ("sdpa", "eager")
    assert fam.lm_head(model) is model.lm_head and fam.language_model(model) is model.model.language_model
    assert fam.vision_modules(model) == [model.model.video_tower, model.model.multi_modal_projector]


def test_lora_stays_in_the_language_model_and_is_seeded(toy):
    model, _ = toy
    state = torch.get_rng_state()
    a = add_lora(build_toy_model(WORDS, seed=0)[0], r=2, alpha=4, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG untouched
    b = add_lora(build_toy_model(WORDS, seed=0)[0], r=2, alpha=4, seed=7)
    lora_a = {n: p for n, p in a.named_parameters() if "lora_" in n}
    assert lora_a and all("language_model" in n for n in lora_a)
    assert all(torch.equal(p, dict(b.named_parameters())[n]) for n, p in lora_a.items())


def test_a_saved_folder_reloads_as_its_family(toy, tmp_path):
    model, processor = toy
    save_model(model, processor, tmp_path / "m")
    again, _ = load_model(tmp_path / "m")
    assert family_of(again) is VIDEO_LLAVA
    assert VIDEOLLAVA_7B_HUB_ID.startswith("LanguageBind/")


def test_the_interface_lists_every_method():
    """A new family sees at once what it must implement: every method of the base class raises until it does."""
    base = VideoLLMFamily()
    methods = [m for m in dir(VideoLLMFamily) if not m.startswith("_") and callable(getattr(VideoLLMFamily, m))]
    assert set(methods) >= {"load", "save", "num_video_tokens", "preprocess", "video_features", "vision_modules",
                            "embed_video", "language_model", "lm_head", "attn_implementation", "generate",
                            "lora_target_regex", "set_pretraining_trainable", "owns"}
    with pytest.raises(NotImplementedError):
        base.video_features(None, None)
