"""Load and save models of any registered family through one code path.

`load_model` calls the family's `from_pretrained` for both presets: a toy model folder written by `save_model`
reloads exactly like `LanguageBind/Video-LLaVA-7B-hf`. No `trust_remote_code`. Which family a folder holds is
read from its `config.json` (`model_type`); a hub id names its family in `MODELS`.

May import: torch, `hacalib.io`, `.family` and the family modules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..io import atomic_dir
from .registry import FAMILIES, family_of, get_family
from .videollava import VIDEOLLAVA_7B_HUB_ID, VIDEOLLAVA_7B_REVISION


@dataclass(frozen=True)
class ModelSpec:
    """A loadable model: hub id (or path), the revision the published tables used, and its family."""

    name_or_path: str
    revision: str | None
    note: str = ""
    family: str = "video_llava"


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


def _folder_family(folder: Path) -> str:
    """The family of a saved model folder, from the `model_type` of its config.json (default Video-LLaVA)."""
    config = folder / "config.json"
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type") if config.is_file() else None
    return next((f.name for f in FAMILIES.values() if f.model_type == model_type), "video_llava")


def load_model(
    path_or_hub_id: str | Path,
    revision: str | None = None,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
) -> tuple[torch.nn.Module, Any]:
    """Load a model and its processor with `from_pretrained` (hub id or local folder).

    Args:
        path_or_hub_id: a folder written by `save_model`, or a hub id such as `VIDEOLLAVA_7B_HUB_ID`.
            A key of `MODELS` ("videollava-7b") is accepted too and brings its pinned revision and family.
        revision: hub revision (branch, tag or commit); ignored for local folders.
        dtype: see `resolve_dtype`; computations that read probabilities upcast to float32 themselves.
        device: move the model there; None leaves it on the CPU for the caller (or accelerate) to place.

    Returns the model in eval mode and the processor.
    """
    name, family = str(path_or_hub_id), None
    if name in MODELS:
        spec = MODELS[name]
        name, revision, family = spec.name_or_path, revision or spec.revision, spec.family
    if family is None:
        family = _folder_family(Path(name)) if Path(name).is_dir() else "video_llava"
    from safetensors import SafetensorError

    try:
        model, processor = get_family(family).load(name, revision=revision, dtype=resolve_dtype(dtype, device))
    except SafetensorError as exc:  # a truncated or foreign weights file: name the folder, not only the library's words
        raise DataError(name, f"the model weights cannot be read ({exc}); delete the folder to build it again") \
            from exc
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


def save_model(model: torch.nn.Module, processor: Any, path: str | Path) -> Path:
    """Write model (safetensors) + processor + tokenizer into `path` atomically; `load_model(path)` reloads it."""
    with atomic_dir(path) as tmp:
        family_of(model).save(model, processor, tmp)
    return Path(path)


def num_video_tokens(processor: Any, num_frames: int = 8) -> int:
    """How many video tokens the processor writes for one video of `num_frames` frames (the family's rule)."""
    return family_of(processor).num_video_tokens(processor, num_frames)


def preprocess_videos(processor: Any, videos: list) -> torch.Tensor:
    """Frames -> `pixel_values_videos` (B, T, 3, H, W) float32, with the processor's resize/crop/normalise.

    Args:
        videos: a list of (T, H, W, 3) uint8 arrays or tensors (e.g. from `hacalib.data.video.read_video`).
    """
    return family_of(processor).preprocess(processor, videos)


def processed_video_fn(processor: Any, num_frames: int = 8):
    """path -> (num_frames, 3, H, W) float tensor: `hacalib.data.video.read_video` + the family's processor.

    Args:
        processor: the model's processor (its video processor resizes, crops and normalises the frames).
        num_frames: frames sampled uniformly from each video.
    """
    from ..data.video import read_video

    family = family_of(processor)

    def fn(path: Path) -> torch.Tensor:
        return family.preprocess(processor, [read_video(path, num_frames=num_frames)])[0]

    return fn


def processing_fingerprint(processor: Any, num_frames: int = 8) -> str:
    """What `processed_video_fn(processor, num_frames)` makes of frames, as a short key: the family, the frame count
    and a hash of a fixed probe video after the processor (its size, crop and normalisation all show in it)."""
    probe = (torch.arange(num_frames * 24 * 24 * 3) * 7 % 256).to(torch.uint8).reshape(num_frames, 24, 24, 3)
    family = family_of(processor)
    pixels = family.preprocess(processor, [probe.numpy()])[0].contiguous()
    return f"{family.name}/{num_frames}/{hashlib.sha256(pixels.numpy().tobytes()).hexdigest()[:16]}"


class _Shelf(dict):
    """A dict of processed videos that keeps only keys naming a file: a request holding frames in memory is keyed by
    its object's id (`ScoreRequest.key`), which a later object may reuse, so it is never kept beyond one call."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if not (isinstance(key, tuple) and key[:1] == ("frames",)):
            super().__setitem__(key, value)


class VideoStore:
    """Processed videos kept in memory across the models one experiment trains and evaluates, so each video file is
    decoded once per process, not once per model (the toy preset: ~300 MB for one family's videos; a paper preset
    keeps none, a 7B model's processed video being ~5 MB). Shelves are per processing fingerprint, so models whose
    processors differ never share a tensor, and per group: a benchmark's videos are keyed by its request keys
    (`hacalib.scoring.requests.ScoreRequest.key`), which need not be unique across benchmarks."""

    def __init__(self) -> None:
        self._shelves: dict[tuple[str, str], dict] = {}

    def shelf(self, processor: Any, group: str, num_frames: int = 8) -> dict:
        """The dict of processed videos of `group` for this processor (a `video_cache` for the scoring functions)."""
        return self._shelves.setdefault((processing_fingerprint(processor, num_frames), group), _Shelf())

    def video_fn(self, processor: Any, num_frames: int = 8):
        """`processed_video_fn(processor, num_frames)`, each path's tensor kept on the 'train' shelf."""
        shelf, fn = self.shelf(processor, "train", num_frames), processed_video_fn(processor, num_frames)

        def cached(path: Path) -> torch.Tensor:
            key = str(path)
            if key not in shelf:
                shelf[key] = fn(path)
            return shelf[key]

        return cached

    def __len__(self) -> int:
        return sum(len(s) for s in self._shelves.values())
