"""A tiny random-weight VideoChat2 for tests, and the toy VideoChat2 that toy pretraining starts from.

Same architecture as the paper model, every width shrunk: a 2-block UMT encoder on 32-pixel frames, a 2-layer
Q-Former, a few queries, a small Mistral, the word-level toy tokenizer. `build_tiny_videochat2` is the test size
(2 x 2 patches of 16, 6 queries); `build_toy_videochat2` the toy preset's base model before pretraining (4 x 4
patches of 8 as the toy Video-LLaVA's CLIP tower sees, 32 queries, the toy Video-LLaVA's Llama widths).

May import: torch, transformers, `hacalib.prompts`, `..tokenizer`, this package's modules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import torch
from transformers import InstructBlipQFormerConfig, MistralConfig

from ... import prompts
from ..tokenizer import build_word_tokenizer
from .configuration import VideoChat2Config, VideoChat2VisionConfig
from .modeling import VideoChat2ForConditionalGeneration
from .processing import VideoChat2Processor


def template_words(template: prompts.ChatTemplate = prompts.VIDEOCHAT2) -> list[str]:
    """The literal words of a chat template (placeholders and special tokens removed), for a word tokenizer."""
    pattern = r"\{[a-z_]+\}|" + re.escape(template.video_token) + "|" + re.escape(prompts.MASK_TOKEN)
    return [re.sub(pattern, " ", t) for t in (template.entail, template.mask, template.caption, template.qa)]


def build_tiny_videochat2(
    vocab_words: Iterable[str],
    seed: int,
    *,
    image_size: int = 32,
    patch_size: int = 16,
    vision_hidden: int = 32,
    vision_layers: int = 2,
    vision_heads: int = 4,
    qformer_hidden: int = 32,
    qformer_layers: int = 2,
    qformer_heads: int = 4,
    qformer_vocab: int = 40,
    num_query_tokens: int = 6,
    instruction_ids: tuple[int, ...] = (1, 7, 9, 11, 2),
    text_hidden: int = 64,
    text_layers: int = 2,
    text_heads: int = 4,
    dropout: float = 0.0,
) -> tuple[VideoChat2ForConditionalGeneration, VideoChat2Processor]:
    """A freshly initialised tiny VideoChat2 and its processor (float32, eval mode).

    Args:
        vocab_words: words the toy tokenizer must know (the template's words are added).
        seed: initialises the weights; the caller's global RNG state is left untouched.
        image_size, patch_size: frame side and patch side (grid = image_size // patch_size per side).
        vision_*: UMT width, blocks, heads (MLP 4x wide).
        qformer_*: Q-Former width, layers (cross-attention every 2nd), heads, vocabulary size.
        num_query_tokens: video tokens per video (96 in the paper model).
        instruction_ids: the fixed Q-Former instruction's ids (below `qformer_vocab`).
        text_*: Mistral width, layers, heads.
        dropout: the Q-Former's hidden and attention dropout (the original uses 0.1; 0 keeps tests exact).
    """
    tokenizer = build_word_tokenizer([*vocab_words, *template_words()])
    vision = VideoChat2VisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=vision_hidden,
                                    intermediate_size=4 * vision_hidden, num_attention_heads=vision_heads,
                                    num_hidden_layers=vision_layers)
    qformer = InstructBlipQFormerConfig(vocab_size=qformer_vocab, hidden_size=qformer_hidden,
                                        num_hidden_layers=qformer_layers, num_attention_heads=qformer_heads,
                                        intermediate_size=4 * qformer_hidden, encoder_hidden_size=vision_hidden,
                                        max_position_embeddings=64, hidden_dropout_prob=dropout,
                                        attention_probs_dropout_prob=dropout)
    text = MistralConfig(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=4 * text_hidden,
                         num_hidden_layers=text_layers, num_attention_heads=text_heads, num_key_value_heads=text_heads,
                         max_position_embeddings=1024, sliding_window=None, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)
    config = VideoChat2Config(vision_config=vision, qformer_config=qformer, text_config=text,
                              num_query_tokens=num_query_tokens, qformer_instruction="(tiny test instruction)",
                              qformer_instruction_ids=instruction_ids,
                              video_token_id=tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoChat2ForConditionalGeneration(config)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    processor = VideoChat2Processor(tokenizer, image_size=image_size, num_video_tokens=num_query_tokens)
    return model.eval(), processor


def build_toy_videochat2(vocab_words: Iterable[str], seed: int, *, image_size: int = 32, patch_size: int = 8,
                         vision_hidden: int = 64, vision_layers: int = 2, text_hidden: int = 128, text_layers: int = 2,
                         num_query_tokens: int = 32, qformer_layers: int = 2
                         ) -> tuple[VideoChat2ForConditionalGeneration, VideoChat2Processor]:
    """A freshly initialised toy VideoChat2 (~0.9M parameters at the defaults) for toy pretraining.

    Widths follow the toy Video-LLaVA (`hacalib.models.build_toy_model`) so the two families differ in architecture,
    not in size: the UMT encoder as wide and deep as its CLIP tower, the Q-Former as wide as the encoder, the Mistral
    as the Llama. 32 queries hand the language model 32 video tokens where the toy Video-LLaVA hands it 136
    (8 frames x 17): VideoChat2's compression, as 96 vs 2,056 at 7B. No dropout (toy pretraining uses none).
    """
    return build_tiny_videochat2(
        vocab_words, seed, image_size=image_size, patch_size=patch_size, vision_hidden=vision_hidden,
        vision_layers=vision_layers, vision_heads=4, qformer_hidden=vision_hidden, qformer_layers=qformer_layers,
        qformer_heads=4, num_query_tokens=num_query_tokens, text_hidden=text_hidden, text_layers=text_layers,
        text_heads=4, dropout=0.0)


def build_tiny_videochat2_7b(tokenizer_model: Path, seed: int = 0
                             ) -> tuple[VideoChat2ForConditionalGeneration, VideoChat2Processor]:
    """(model, processor): the paper checkpoint's geometry with random weights at a tiny width, for the
    `videochat2-7b` preset's CPU rehearsal (`hacalib.rehearsal`).

    Real: the Mistral v0.1/v0.2 SentencePiece vocabulary (`tokenizer_model`, loaded with `legacy=True` as the
    processor stores it) with `<video>` added, 224-pixel frames in 16-pixel patches (196 per frame, joint attention
    over all frames), the 4-frame position table interpolated in time, the Q-Former's bert-base-uncased vocabulary
    and the stage-3 demo's instruction ids, 96 query tokens. Tiny: every width and depth.
    """
    import shutil
    import tempfile

    from transformers import LlamaTokenizer

    from .configuration import DEFAULT_INSTRUCTION, DEFAULT_INSTRUCTION_IDS, QFORMER_VOCAB_SIZE
    from .processing import prepare_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(tokenizer_model, Path(tmp) / "tokenizer.model")
        tokenizer = prepare_tokenizer(LlamaTokenizer.from_pretrained(tmp, legacy=True))
    vision = VideoChat2VisionConfig(image_size=224, patch_size=16, hidden_size=32, intermediate_size=64,
                                    num_attention_heads=2, num_hidden_layers=2)
    qformer = InstructBlipQFormerConfig(vocab_size=QFORMER_VOCAB_SIZE, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, encoder_hidden_size=32,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    video_id = tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN)
    text = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         sliding_window=None, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    config = VideoChat2Config(vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=96,
                              qformer_instruction=DEFAULT_INSTRUCTION, qformer_instruction_ids=DEFAULT_INSTRUCTION_IDS,
                              video_token_id=video_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoChat2ForConditionalGeneration(config)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    processor = VideoChat2Processor(tokenizer, image_size=224, num_video_tokens=96, tokenizer_kwargs={"legacy": True})
    return model.eval(), processor
