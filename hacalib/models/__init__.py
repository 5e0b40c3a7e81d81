"""Video-LLaVA models: the toy one built from configs, the 7B one from the hub, LoRA through peft."""

from .loading import (
    MODELS,
    VIDEOLLAVA_7B_HUB_ID,
    VIDEOLLAVA_7B_REVISION,
    ModelSpec,
    atomic_dir,
    load_model,
    num_video_tokens,
    preprocess_videos,
    resolve_dtype,
    save_model,
)
from .lora import DEFAULT_TARGETS, add_lora, language_model_target_regex, load_adapter, save_adapter
from .tokenizer import build_word_tokenizer, split_words
from .toy import build_toy_model, build_toy_processor

__all__ = [
    "MODELS",
    "VIDEOLLAVA_7B_HUB_ID",
    "VIDEOLLAVA_7B_REVISION",
    "ModelSpec",
    "DEFAULT_TARGETS",
    "add_lora",
    "atomic_dir",
    "build_toy_model",
    "build_toy_processor",
    "build_word_tokenizer",
    "language_model_target_regex",
    "load_adapter",
    "load_model",
    "num_video_tokens",
    "preprocess_videos",
    "resolve_dtype",
    "save_adapter",
    "save_model",
    "split_words",
]
