"""Video-LLaVA-7B-hf's configuration at a tiny size, random weights, with the real Llama-2 vocabulary.

What the paper preset's CPU rehearsal (`hacalib.rehearsal`) puts where the hub model would be: the vocabulary and
special ids, the vision geometry (224 px, patch 14, CLS kept per frame: 8 frames -> 2,056 video tokens) and the
feature layer are the real model's; only widths and depths are tiny.

May import: torch, transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def build_tokenizer(tokenizer_model: Path):
    """The Llama-2 tokenizer as `LanguageBind/Video-LLaVA-7B-hf` ships it: `<image>`, `<video>` as special
    tokens, a `<pad>` token, BOS added, left padding (transformers' Video-LLaVA conversion script)."""
    import tempfile

    from transformers import AddedToken, LlamaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(tokenizer_model, Path(tmp) / "tokenizer.model")
        tok = LlamaTokenizer.from_pretrained(tmp, add_bos_token=True)
    tok.add_tokens(AddedToken("<image>", special=True, normalized=False), special_tokens=True)
    tok.add_tokens(AddedToken("<video>", special=True, normalized=False), special_tokens=True)
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.padding_side = "left"
    return tok


def build_tiny_videollava_7b_hf(tokenizer_model: Path, seed: int = 0):
    """(model, processor): Video-LLaVA-7B-hf's configuration (vocabulary, special ids, vision geometry, feature
    layer) at a tiny width and depth, random weights."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
        VideoLlavaProcessor,
        VideoLlavaVideoProcessor,
    )

    tok = build_tokenizer(tokenizer_model)
    size, crop = {"shortest_edge": 224}, {"height": 224, "width": 224}  # CLIP ViT-L/14-224 (mean/std default)
    processor = VideoLlavaProcessor(
        image_processor=VideoLlavaImageProcessor(size=size, crop_size=crop),
        video_processor=VideoLlavaVideoProcessor(size=size, crop_size=crop),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1)
    vision = CLIPVisionConfig(image_size=224, patch_size=14, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
    text = LlamaConfig(vocab_size=32064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                       bos_token_id=1, eos_token_id=2, pad_token_id=32002, tie_word_embeddings=False)
    config = VideoLlavaConfig(vision_config=vision, text_config=text, image_token_index=32000,
                              video_token_index=32001, vision_feature_layer=-2,
                              vision_feature_select_strategy="default", image_seq_length=256,
                              video_seq_length=2056, tie_word_embeddings=False)
    config.pad_token_id = 32002
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoLlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id, model.generation_config.bos_token_id = 32002, 1
    model.generation_config.eos_token_id = 2
    return model.eval(), processor
