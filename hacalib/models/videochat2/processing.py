"""VideoChat2's processor: its tokenizer (with the video placeholder) and its frame pipeline.

Frames: resize the short side to `image_size` (bicubic, antialiased), centre crop to a square, scale to [0, 1],
normalise with CLIP's mean/std, as the stage-3 demo (`demo/demo_mistral.ipynb`) does; never flipped (VELOCITI
and SSv2 captions say left and right). The training script's random resized crop, horizontal flip and
ImageNet statistics are the alternative (docs/videochat2.md, "Preprocessing").

Tokenizer: the language model's, with the placeholder `<video>` added as a special token, BOS added, padding on
the right (hacalib pads itself). The original tokenizes the prompt in segments around the video, BOS only on the
first (`check_prompt_tokenization` compares the two ways).

May import: torch, torchvision, transformers, `hacalib.prompts`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from transformers import AutoTokenizer

from ... import prompts

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CONFIG_NAME = "videochat2_processor.json"


class VideoChat2Processor:
    """Tokenizer + frames -> pixels for VideoChat2 (saved beside the model with `save_pretrained`).

    Args:
        tokenizer: the language model's tokenizer holding `video_token` as a special token.
        image_size: side of the square frames the vision encoder sees (224).
        image_mean, image_std: per-channel normalisation (CLIP's, the stage-3 demo's).
        num_video_tokens: video tokens per video (the model's query count, 96), whatever the frame count.
        video_token: the placeholder the chat template writes once and `hacalib.models.text` expands.
        tokenizer_kwargs: passed to `AutoTokenizer.from_pretrained` when reloading: {"legacy": True} for Mistral's
            SentencePiece tokenizer, whose saved files do not keep the flag (transformers 5.24).
    """

    def __init__(self, tokenizer: Any, *, image_size: int = 224, image_mean: Sequence[float] = CLIP_MEAN,
                 image_std: Sequence[float] = CLIP_STD, num_video_tokens: int = 96, video_token: str = prompts.VIDEO_TOKEN,
                 tokenizer_kwargs: dict | None = None):
        if tokenizer.convert_tokens_to_ids(video_token) in (None, tokenizer.unk_token_id):
            raise ValueError(f"the tokenizer has no {video_token!r} token (use `prepare_tokenizer`)")
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        self.num_video_tokens = int(num_video_tokens)
        self.video_token = video_token
        self.tokenizer_kwargs = dict(tokenizer_kwargs or {})

    @property
    def video_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.video_token)

    def preprocess(self, videos: Sequence[Any]) -> torch.Tensor:
        """Decoded frames (each (T, H, W, 3) uint8) -> (B, T, 3, S, S) float32; all videos need the same T."""
        out = []
        for video in videos:
            frames = torch.as_tensor(np.asarray(video))
            if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
                raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
            x = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
            if min(x.shape[-2:]) != self.image_size:
                x = TF.resize(x, [self.image_size], interpolation=InterpolationMode.BICUBIC, antialias=True)
            x = TF.center_crop(x, [self.image_size, self.image_size])
            x = TF.normalize(x.float() / 255.0, list(self.image_mean), list(self.image_std))
            out.append(x)
        if len({v.shape[0] for v in out}) > 1:
            raise ValueError(f"videos have different frame counts {[v.shape[0] for v in out]}")
        return torch.stack(out)

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.tokenizer.save_pretrained(path)
        cfg = {"image_size": self.image_size, "image_mean": list(self.image_mean), "image_std": list(self.image_std),
               "num_video_tokens": self.num_video_tokens, "video_token": self.video_token,
               "tokenizer_kwargs": self.tokenizer_kwargs, "processor_class": type(self).__name__}
        (path / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "VideoChat2Processor":
        path = Path(path)
        cfg_file = path / CONFIG_NAME
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{cfg_file} not found: not a VideoChat2 folder written by save_pretrained / "
                                    "`haca convert-videochat2`")
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        cfg.pop("processor_class", None)
        tokenizer = AutoTokenizer.from_pretrained(str(path), **cfg.get("tokenizer_kwargs", {}))
        return cls(tokenizer, **cfg)


def prepare_tokenizer(tokenizer: Any, video_token: str = prompts.VIDEO_TOKEN) -> Any:
    """The language model's tokenizer made ready for hacalib: placeholder added, BOS on, a pad id, right padding."""
    tokenizer.add_special_tokens({"additional_special_tokens": [video_token]})
    if hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = True
    if tokenizer.pad_token is None:  # Mistral has none; the original pads with EOS (its attention mask hides it)
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def segment_ids(tokenizer: Any, prompt: str, num_video_tokens: int, video_token: str = prompts.VIDEO_TOKEN) -> list[int]:
    """The original's way (`get_context_emb` of the demo): text before and after the video tokenized separately,
    special tokens (BOS) only on the first segment, the video's tokens between them."""
    before, sep, after = prompt.partition(video_token)
    if not sep or video_token in after:
        raise ValueError(f"expected one {video_token} in the prompt {prompt!r}")
    head = tokenizer(before).input_ids
    tail = tokenizer(after, add_special_tokens=False).input_ids
    return head + [tokenizer.convert_tokens_to_ids(video_token)] * num_video_tokens + tail


def check_prompt_tokenization(tokenizer: Any, template: prompts.ChatTemplate, num_video_tokens: int) -> None:
    """Raise unless one-call tokenization (hacalib's, `hacalib.models.text`) gives the original's segment ids.

    SentencePiece tokenizers differ here: after a special token, a `legacy=True` Llama/Mistral tokenizer starts
    the next text with the word-boundary piece (`▁</` for " </Video>") as a separately tokenized segment does;
    `legacy=False` does not.
    """
    from ..text import prompt_ids

    probe = template.entail_prompt("a man walks to the left")
    ours = prompt_ids(tokenizer, [probe], num_video_tokens, template)[0]
    theirs = segment_ids(tokenizer, probe, num_video_tokens, template.video_token)
    if ours != theirs:
        k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        raise ValueError(f"the tokenizer splits the prompt differently from the original's segment-wise tokenization "
                         f"at token {k}: ours {ours[k - 2:k + 3]} vs original {theirs[k - 2:k + 3]} (for a "
                         "SentencePiece tokenizer load it with legacy=True)")


def original_frame_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """The stage-3 demo's frame choice: segment s = (N - 1) / T, frame i = int(s / 2) + round(s * i).

    hacalib reads frames through `hacalib.data.video.read_video` for every family (Video-LLaVA's uniform rule);
    this is the original's, for comparison (docs/videochat2.md, "Frames").
    """
    seg = float(total_frames - 1) / num_frames
    return np.array([int(seg / 2) + int(np.round(seg * i)) for i in range(num_frames)], dtype=np.int64)
