"""Load and save Video-LLaVA models (the toy one and the hub one) through one code path.

`load_model` calls `from_pretrained` on transformers' own classes for both presets: a toy model folder
written by `save_model` reloads exactly like `LanguageBind/Video-LLaVA-7B-hf`. No `trust_remote_code`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import VideoLlavaForConditionalGeneration, VideoLlavaProcessor

from ..io import atomic_dir  # noqa: F401  (re-exported: hacalib.models.atomic_dir)


@dataclass(frozen=True)
class ModelSpec:
    """A loadable model: hub id (or path) and the revision the published tables used."""

    name_or_path: str
    revision: str | None
    note: str = ""


# The real model, pinned to a commit; transformers also records the resolved commit
# (`model.config._commit_hash`) so provenance shows which weights were used.
VIDEOLLAVA_7B_HUB_ID = "LanguageBind/Video-LLaVA-7B-hf"
# The newest commit in the hub repository's public history ("Upload processor", 2024-05-09).
VIDEOLLAVA_7B_REVISION = "d814f26332051e31c43352e8c1c0ef230ed6fb5d"
MODELS: dict[str, ModelSpec] = {
    "videollava-7b": ModelSpec(VIDEOLLAVA_7B_HUB_ID, VIDEOLLAVA_7B_REVISION, "Video-LLaVA 7B, the paper's model"),
}


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device | None) -> torch.dtype:
    """'auto' is bf16 when the model goes (or, with device=None, could go) to CUDA, else float32.

    Args:
        dtype: 'auto', 'bfloat16', 'float16', 'float32' or a torch dtype.
        device: where the model will run; None means "the caller moves it" (e.g. accelerate).
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
        return torch.bfloat16 if on_cuda else torch.float32
    names = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
             "float32": torch.float32, "fp32": torch.float32}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; choose 'auto' or one of {sorted(names)}")
    return names[dtype]


def load_model(
    path_or_hub_id: str | Path,
    revision: str | None = None,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
) -> tuple[VideoLlavaForConditionalGeneration, VideoLlavaProcessor]:
    """Load a Video-LLaVA model and its processor with `from_pretrained` (hub id or local folder).

    Args:
        path_or_hub_id: a folder written by `save_model`, or a hub id such as `VIDEOLLAVA_7B_HUB_ID`.
            A key of `MODELS` ("videollava-7b") is accepted too and brings its pinned revision.
        revision: hub revision (branch, tag or commit); ignored for local folders.
        dtype: see `resolve_dtype`; computations that read probabilities upcast to float32 themselves.
        device: move the model there; None leaves it on the CPU for the caller (or accelerate) to place.

    Returns the model in eval mode and the processor.
    """
    name = str(path_or_hub_id)
    if name in MODELS:
        spec = MODELS[name]
        name, revision = spec.name_or_path, revision or spec.revision
    kw = {} if Path(name).is_dir() or revision is None else {"revision": revision}
    model = VideoLlavaForConditionalGeneration.from_pretrained(name, dtype=resolve_dtype(dtype, device), **kw)
    processor = VideoLlavaProcessor.from_pretrained(name, **kw)
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


def save_model(model: VideoLlavaForConditionalGeneration, processor: VideoLlavaProcessor, path: str | Path) -> Path:
    """Write model (safetensors) + processor + tokenizer into `path` atomically; `load_model(path)` reloads it."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return Path(path)


def num_video_tokens(processor: VideoLlavaProcessor, num_frames: int = 8) -> int:
    """How many `<video>` tokens the processor writes for one video of `num_frames` frames.

    frames * ((H / patch) * (W / patch) + CLS); 136 for the toy (8 x (16 + 1)), 2056 for Video-LLaVA-7B.
    """
    vp = processor.video_processor
    size = vp.crop_size if vp.do_center_crop else vp.size
    if "height" not in size:
        raise ValueError(f"cannot infer the frame size from the video processor's size {dict(size)}")
    per_frame = (size["height"] // processor.patch_size) * (size["width"] // processor.patch_size)
    return num_frames * (per_frame + processor.num_additional_image_tokens)


def preprocess_videos(processor: VideoLlavaProcessor, videos: list) -> torch.Tensor:
    """Frames -> `pixel_values_videos` (B, T, 3, H, W) float32, with the processor's resize/crop/normalise.

    Args:
        videos: a list of (T, H, W, 3) uint8 arrays or tensors (e.g. from `hacalib.video.read_video`).
    """
    return processor.video_processor(videos=list(videos), return_tensors="pt")["pixel_values_videos"]
