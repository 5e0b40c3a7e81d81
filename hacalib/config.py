"""Configuration: one dataclass per stage, every field with a one-line help text.

The same objects feed the Python API, the notebooks' parameters cells and the CLI. Nothing here reads
environment variables or globals; a preset is just a function returning filled-in dataclasses.
Each stage's owner module may add fields to its own dataclass (keep the `help` metadata). As in TRL's configs,
a field may declare its `choices` or a `range`, and a bad value fails when the dataclass is built, naming the field.
Fields marked `neutral` change how a run is logged or cached, never what it learns: they stay out of cache keys and
may change between an interrupted run and its resumption.

The facts the stages share live here once: the fine-tuning `OBJECTIVES`, the paper's `DEFAULT_MASK_RATIO` and the
model families' names in tables (`FAMILY_LABELS`).

May import: nothing of hacalib (a leaf).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

OBJECTIVES = ("entail", "haca", "haca_mask")  # the fine-tuning objectives (PROTOCOL.md, "Prompts, targets and masking")
DEFAULT_MASK_RATIO = 0.45  # the paper's share of content words masked by the masking task
FAMILY_LABELS = {"video_llava": "Video-LLaVA", "videochat2": "VideoChat2"}  # model families as tables name them
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _f(default: Any, help: str, *, choices: tuple | None = None, range: tuple | None = None,
       neutral: bool = False, **kw: Any) -> Any:
    """A dataclass field with a help text (shown by `describe`), optional `choices` or inclusive `range`
    (low, high; None for an open end), checked by `validate`, and `neutral` (see the module docstring)."""
    meta = {"help": help, "choices": choices, "range": range, "neutral": neutral}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


class ConfigError(ValueError):
    """A configuration field has a value outside its choices or range; the message names the field."""


def _type_problem(value: Any, annotation: str) -> str | None:
    """Why `value` is not of the simple type `annotation` names ('int', 'float', 'bool', 'str'), or None. Numbers are
    strict: a bool is not a number, a count is a whole int (not 2.5, not 2.0), a float is finite."""
    if annotation == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if annotation == "str":
        return None if isinstance(value, str) else "must be a string"
    if annotation == "int":
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "must be a whole number"
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    return None  # tuples, optionals: their own checks


def validate(cfg: Any) -> None:
    """Check every field of a config dataclass against its type, its declared choices and range."""
    for f in fields(cfg):
        value, choices, bounds = getattr(cfg, f.name), f.metadata.get("choices"), f.metadata.get("range")
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        problem = _type_problem(value, annotation)
        if problem:
            raise ConfigError(f"{type(cfg).__name__}.{f.name} {problem}, got {value!r}")
        if choices is not None and value not in choices:
            raise ConfigError(f"{type(cfg).__name__}.{f.name} must be one of {list(choices)}, got {value!r}")
        if bounds is not None:
            low, high = bounds
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or \
                    (low is not None and value < low) or (high is not None and value > high):
                where = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ConfigError(f"{type(cfg).__name__}.{f.name} must be a number in {where}, got {value!r}")


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """A config dataclass from a user's mapping (a JSON object), every mistake one ConfigError that starts with
    `where` (e.g. 'run.json, train'): not an object, an unknown field, a value of the wrong type or range."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a JSON object of {cls.__name__} fields, got {type(data).__name__}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown {cls.__name__} field(s) {unknown}; known: {', '.join(known)}")
    try:
        return cls(**data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def result_neutral_fields(cls: type) -> frozenset[str]:
    """The fields of a config dataclass marked `neutral`: left out of cache keys and resume checks."""
    return frozenset(f.name for f in fields(cls) if f.metadata.get("neutral"))


class _Validated:
    def __post_init__(self) -> None:
        validate(self)


@dataclass
class ToyWorldConfig(_Validated):
    size: str = _f("default", "world size preset: 'smoke' (tests, seconds) or 'default' (reproduce)",
                   choices=("smoke", "default"))
    seed: int = _f(0, "seed; the same seed gives the same world, byte for byte in the CSV/JSON files", range=(0, None))
    canvas: int = _f(32, "canvas side in pixels")
    num_frames: int = _f(16, "rendered frames per video")
    fps: int = _f(8, "frames per second written into the mp4")
    model_frames: int = _f(8, "frames the model samples per video; events are aligned to these frames")


@dataclass
class ModelConfig(_Validated):
    preset: str = _f("toy", "'toy' (small Video-LLaVA built from configs) or 'videollava-7b' (the paper)")
    name_or_path: str = _f("", "hub id or local path; empty means the preset's default")
    revision: str = _f("", "pinned hub revision for the real model; empty means the preset's pin")
    dtype: str = _f("auto", "'auto' (bf16 on CUDA, fp32 on CPU), 'bfloat16', 'float16' or 'float32'",
                    choices=("auto", "bfloat16", "bf16", "float16", "fp16", "float32", "fp32"))
    num_frames: int = _f(8, "frames sampled per video (Video-LLaVA uses 8)", range=(1, None))
    lora_r: int = _f(16, "LoRA rank", range=(1, None))
    lora_alpha: int = _f(32, "LoRA alpha", range=(0, None))
    lora_dropout: float = _f(0.05, "LoRA dropout", range=(0.0, 1.0))
    lora_targets: list = _f(list(DEFAULT_LORA_TARGETS), "language-model projection names that get LoRA adapters")


@dataclass
class TrainConfig(_Validated):
    objective: str = _f("haca", "'entail' (Yes/No), 'haca' (Yes / No + correction) or 'haca_mask' (haca + masking); "
                        "'pretrain' is the toy base model's own run", choices=(*OBJECTIVES, "pretrain"))
    seed: int = _f(0, "seed for sampling, dropout and LoRA init", range=(0, None))
    max_steps: int = _f(300, "optimizer steps", range=(1, None))
    batch_size: int = _f(16, "examples per optimizer step per process (before accumulation)", range=(1, None))
    grad_accum: int = _f(1, "gradient accumulation steps", range=(1, None))
    lr: float = _f(1e-3, "peak learning rate", range=(0.0, None))
    weight_decay: float = _f(0.0, "AdamW weight decay", range=(0.0, None))
    warmup_steps: int = _f(20, "linear warmup steps", range=(0, None))
    schedule: str = _f("cosine", "'cosine' or 'linear' decay after warmup", choices=("cosine", "linear"))
    max_grad_norm: float = _f(1.0, "gradient clipping norm (0: no clipping)", range=(0.0, None))
    loss_reduction: str = _f("token", "'token' (mean over target tokens) or 'sequence' (mean per example, then over "
                             "the batch)", choices=("token", "sequence"))
    mask_ratio: float = _f(DEFAULT_MASK_RATIO, "fraction of content words masked in the masking task", range=(0.0, 1.0))
    mixed_precision: str = _f("auto", "'auto' (bf16 on CUDA, none on CPU), 'no', 'bf16' or 'fp16'",
                              choices=("auto", "no", "bf16", "fp16"))
    checkpoint_every: int = _f(100, "save adapter + optimizer + scheduler + RNG every N steps", range=(1, None),
                               neutral=True)
    log_every: int = _f(10, "write a JSON-lines metrics record every N steps", range=(1, None), neutral=True)
    keep_checkpoints: int = _f(2, "complete checkpoints kept on disk (the newest N; 0 keeps all)", range=(0, None),
                               neutral=True)
    packed: bool = _f(True, "one packed sequence per video: the video prefix once, its targets as segments "
                      "(same loss as separate sequences; batch_size then counts videos)")
    max_segments: int = _f(16, "packed: most targets in one packed sequence", range=(1, None))
    cache_vision_features: bool = _f(True, "packed: the frozen vision tower runs once per video, its features "
                                     "reused every epoch (same loss; off when the vision side trains)", neutral=True)
    vision_cache_dir: str = _f("", "also keep the cached video features on disk here (safetensors), for later runs; "
                               "'' = memory only", neutral=True)
    max_cached_videos: int = _f(2048, "decoded videos kept in host memory (least recently used out; 0 = none). 7B: "
                                "8x3x224x224 fp32 = 4.8 MB a video, 2048 = 9.9 GB (VideoCon's >11k train videos "
                                "would need >53 GB); unused while cache_vision_features holds the features",
                                range=(0, None), neutral=True)
    max_cached_features: int = _f(2048, "cache_vision_features: videos whose features stay in host memory (least "
                                  "recently used out, then read back from vision_cache_dir or recomputed; 0 = none). "
                                  "7B: 2056x4096 bf16 = 16.8 MB a video, 2048 = 34 GB (all >11k: >185 GB)",
                                  range=(0, None), neutral=True)
    output_dir: str = _f("runs/finetune", "where checkpoints, metrics and the final adapter go", neutral=True)


def describe(cfg: Any) -> str:
    """One line per field: name = value  # help."""
    return "\n".join(f"{f.name} = {getattr(cfg, f.name)!r}  # {f.metadata.get('help', '')}" for f in fields(cfg))


def to_dict(cfg: Any) -> dict:
    return asdict(cfg)


@dataclass
class PretrainConfig(_Validated):
    seed: int = _f(0, "seed for the toy model's initial weights, data order and dropout", range=(0, None))
    steps: int = _f(4800, "optimizer steps of toy pretraining (all parameters, from scratch)", range=(1, None))
    batch_size: int = _f(8, "examples per step per process (packed: videos per step, each with all its examples)",
                         range=(1, None))
    packed: bool = _f(True, "one packed sequence per video (prefix once, examples as segments; PROTOCOL.md, \"Packed training\")")
    max_segments: int = _f(16, "packed: most examples in one packed sequence", range=(1, None))
    lr: float = _f(1e-3, "peak learning rate (3e-3 stayed on the text-only plateau: P(yes) constant)")
    warmup_steps: int = _f(50, "linear warmup steps", range=(0, None))
    schedule: str = _f("cosine", "'cosine' or 'linear' decay after warmup", choices=("cosine", "linear"))
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    image_size: int = _f(32, "frame side the vision tower sees (the toy canvas)")
    position_init: str = _f("random", "CLIP patch position embeddings at init: 'random' (CLIP's) or 'sincos' (2-D, "
                            "so a patch's features say where it is)", choices=("random", "sincos"))
    patch_size: int = _f(8, "vision patch side")
    vision_hidden: int = _f(64, "CLIP vision tower width")
    vision_layers: int = _f(2, "CLIP vision tower depth")
    text_hidden: int = _f(128, "Llama width")
    text_layers: int = _f(2, "Llama depth")
    num_frames: int = _f(8, "frames sampled per video")
    family: str = _f("video_llava", "the toy model's family: 'video_llava' (CLIP tower + Llama) or 'videochat2' (UMT "
                     "encoder + Q-Former + Mistral)", choices=("video_llava", "videochat2"))
    num_query_tokens: int = _f(32, "videochat2: Q-Former queries, so video tokens per video", range=(1, None))
    qformer_layers: int = _f(2, "videochat2: Q-Former depth (cross-attention every 2nd layer)", range=(1, None))
    log_every: int = _f(20, "write a metrics record every N steps", range=(1, None))
    checkpoint_every: int = _f(500, "checkpoint every N steps (an interrupted pretraining resumes)", range=(1, None))
