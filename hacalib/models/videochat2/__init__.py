"""VideoChat2, the paper's second model family, assembled natively from transformers building blocks.

`configuration` (the config), `vision` (the UMT video encoder), `modeling` (the model), `processing` (tokenizer +
frames), `family` (the `VideoLLMFamily` the rest of hacalib talks to), `tiny` (random-weight models for tests,
the toy preset's VideoChat2 before pretraining),
`keymap` and `convert` (the original `.pth` checkpoints -> a `from_pretrained` folder; `haca convert-videochat2`).

May import: torch, transformers, peft, `hacalib.prompts`, `hacalib.io`, `..family`, `..tokenizer`, `..text`.
"""

from .configuration import VideoChat2Config, VideoChat2VisionConfig
from .family import VIDEOCHAT2, VideoChat2Family
from .modeling import VideoChat2ForConditionalGeneration
from .processing import VideoChat2Processor, prepare_tokenizer
from .tiny import build_tiny_videochat2, build_toy_videochat2

__all__ = [
    "VIDEOCHAT2",
    "VideoChat2Config",
    "VideoChat2Family",
    "VideoChat2ForConditionalGeneration",
    "VideoChat2Processor",
    "VideoChat2VisionConfig",
    "build_tiny_videochat2",
    "build_toy_videochat2",
    "prepare_tokenizer",
]
