"""The toy Video-LLaVA: transformers' own `VideoLlavaForConditionalGeneration` at a tiny size.

A small CLIP vision config + a small Llama config + the word-level tokenizer + a real `VideoLlavaProcessor`
with its image/video processors set to the toy canvas. Saved with `save_pretrained`, it reloads through
`hacalib.models.load_model` exactly like the hub model.

May import: torch, transformers, `hacalib.prompts`, `.tokenizer`.
"""

from __future__ import annotations

from typing import Iterable

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

from .. import prompts
from .tokenizer import IMAGE_TOKEN, build_word_tokenizer


def build_toy_processor(vocab_words: Iterable[str], *, image_size: int = 32, patch_size: int = 8) -> VideoLlavaProcessor:
    """A `VideoLlavaProcessor` for the toy canvas: word-level tokenizer, no resize beyond `image_size`.

    Args:
        vocab_words: the toy vocabulary (see `build_word_tokenizer`).
        image_size: side of the square frames the vision tower sees (the toy canvas).
        patch_size: the vision tower's patch size; `<video>` expands to frames * ((size/patch)^2 + 1) tokens.
    """
    tokenizer = build_word_tokenizer(vocab_words)
    # Same pipeline as the real processor (resize shortest edge, centre crop, CLIP mean/std), at toy size.
    size = {"shortest_edge": image_size}
    crop = {"height": image_size, "width": image_size}
    return VideoLlavaProcessor(
        image_processor=VideoLlavaImageProcessor(size=size, crop_size=crop),
        video_processor=VideoLlavaVideoProcessor(size=size, crop_size=crop),
        tokenizer=tokenizer,
        patch_size=patch_size,
        # Images drop the CLS token ("default", as in the real model); videos always keep it (transformers'
        # get_video_features ignores the strategy), which the processor counts via num_additional_image_tokens.
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )


def build_toy_model(
    vocab_words: Iterable[str],
    seed: int,
    *,
    image_size: int = 32,
    patch_size: int = 8,
    vision_hidden: int = 64,
    vision_layers: int = 2,
    vision_heads: int = 4,
    text_hidden: int = 128,
    text_layers: int = 2,
    text_heads: int = 4,
    text_intermediate: int | None = None,
    num_frames: int = 8,
    max_positions: int = 1024,
    position_init: str = "random",
) -> tuple[VideoLlavaForConditionalGeneration, VideoLlavaProcessor]:
    """A freshly initialised toy Video-LLaVA and its processor (~0.8M parameters at the defaults).

    Args:
        vocab_words: toy vocabulary; the tokenizer adds prompt words and special tokens.
        seed: initialises the weights; the caller's global RNG state is left untouched.
        image_size, patch_size: frame side and patch side of the CLIP vision tower.
        vision_hidden, vision_layers, vision_heads: CLIP vision tower width, depth, heads (MLP is 4x wide).
        text_hidden, text_layers, text_heads: Llama width, depth, heads.
        text_intermediate: Llama MLP width (default 4 * text_hidden).
        num_frames: frames per video; sets `video_seq_length` in the config (informational in transformers).
        max_positions: Llama `max_position_embeddings` (RoPE, so it only bounds the intended length).
        position_init: the CLIP towers' patch position embeddings at initialisation: "random" (CLIP's own
            init, std 0.02) or "sincos" (2-D sine-cosine values, as in MAE; the CLS row zero), so that a patch's
            features carry where it is (PROTOCOL.md, "Toy pretraining").
    """
    if position_init not in ("random", "sincos"):
        raise ValueError(f"position_init must be 'random' or 'sincos', got {position_init!r}")
    processor = build_toy_processor(vocab_words, image_size=image_size, patch_size=patch_size)
    tok = processor.tokenizer
    patches = (image_size // patch_size) ** 2
    vision = CLIPVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=vision_hidden,
        intermediate_size=4 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=vision_heads,
        projection_dim=vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=text_hidden,
        intermediate_size=text_intermediate or 4 * text_hidden,
        num_hidden_layers=text_layers,
        num_attention_heads=text_heads,
        num_key_value_heads=text_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    config = VideoLlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        video_token_index=tok.convert_tokens_to_ids(prompts.VIDEO_TOKEN),
        # The real model reads the penultimate CLIP layer (-2); with 2 toy layers that would leave the last
        # layer untrained, so the toy reads the last one.
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_seq_length=patches,
        video_seq_length=num_frames * (patches + 1),
        tie_word_embeddings=False,
    )
    config.pad_token_id = tok.pad_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoLlavaForConditionalGeneration(config)
    if position_init == "sincos":
        grid = image_size // patch_size
        for tower in (model.model.image_tower, model.model.video_tower):
            table = tower.embeddings.position_embedding.weight
            with torch.no_grad():
                table.copy_(sincos_2d(table.shape[1], grid).to(table.dtype))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), processor


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """(1 + grid*grid, dim) position table: a zero row for CLS, then 2-D sine-cosine values per patch (row-major).

    Half the dimensions encode the patch row, half its column, each as sin/cos at geometric frequencies (MAE's
    `get_2d_sincos_pos_embed`). `dim` must be a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embeddings need a width divisible by 4, got {dim}")
    freqs = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(rows), encode(cols)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()
