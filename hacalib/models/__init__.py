"""Models: the model-family interface, its Video-LLaVA implementation, loading, LoRA, tokenization, the packed forward.

`family_of(model)` is how the rest of hacalib reaches anything model-specific (`family.VideoLLMFamily`, listed in
`registry`); only this package names a model's classes. `toy` builds the toy Video-LLaVA from configs, `loading` loads any family with
`from_pretrained`, `lora` puts peft adapters on the language model, `text` turns prompts into token ids,
`packing` is the one-sequence-per-video mechanism that scoring and training share.

May import: `hacalib.prompts`, `hacalib.io`, `hacalib.errors`, `hacalib.data` (video decoding). Never training,
scoring or report.
"""

from .family import VideoLLMFamily, unwrap
from .loading import (
    MODELS,
    ModelSpec,
    VideoStore,
    load_model,
    num_video_tokens,
    preprocess_videos,
    processed_video_fn,
    processing_fingerprint,
    resolve_dtype,
    save_model,
)
from .lora import DEFAULT_TARGETS, add_lora, language_model_target_regex, load_adapter, save_adapter
from .memory import LoadedModels
from .registry import FAMILIES, chat_template, family_of, get_family, register
from .text import IGNORE_INDEX, answer_token_ids, encode_answer, prompt_ids
from .tokenizer import build_word_tokenizer, split_words
from .toy import build_toy_model, build_toy_processor
from .videollava import VIDEOLLAVA_7B_HUB_ID, VIDEOLLAVA_7B_REVISION

__all__ = [
    "DEFAULT_TARGETS",
    "FAMILIES",
    "IGNORE_INDEX",
    "MODELS",
    "VIDEOLLAVA_7B_HUB_ID",
    "VIDEOLLAVA_7B_REVISION",
    "LoadedModels",
    "ModelSpec",
    "VideoLLMFamily",
    "VideoStore",
    "add_lora",
    "answer_token_ids",
    "build_toy_model",
    "build_toy_processor",
    "build_word_tokenizer",
    "chat_template",
    "encode_answer",
    "family_of",
    "get_family",
    "language_model_target_regex",
    "load_adapter",
    "load_model",
    "num_video_tokens",
    "preprocess_videos",
    "processed_video_fn",
    "processing_fingerprint",
    "prompt_ids",
    "register",
    "resolve_dtype",
    "save_adapter",
    "save_model",
    "split_words",
    "unwrap",
]
