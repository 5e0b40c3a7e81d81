"""Configuration: one dataclass per stage, every field with a one-line help text.

The same objects feed the Python API, the notebooks' parameters cells and the CLI. Nothing here reads
environment variables or globals; a preset is just a function returning filled-in dataclasses.
Each stage's owner module may add fields to its own dataclass (keep the `help` metadata).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a help text (shown by `describe`)."""
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class ToyWorldConfig:
    size: str = _f("default", "world size preset: 'smoke' (tests, seconds) or 'default' (reproduce)")
    seed: int = _f(0, "seed; the same seed gives the same world, byte for byte in the CSV/JSON files")
    canvas: int = _f(32, "canvas side in pixels")
    num_frames: int = _f(16, "rendered frames per video")
    fps: int = _f(8, "frames per second written into the mp4")
    model_frames: int = _f(8, "frames the model samples per video; events are aligned to these frames")


@dataclass
class ModelConfig:
    preset: str = _f("toy", "'toy' (small Video-LLaVA built from configs) or 'videollava-7b' (the paper)")
    name_or_path: str = _f("", "hub id or local path; empty means the preset's default")
    revision: str = _f("", "pinned hub revision for the real model; empty means the preset's pin")
    dtype: str = _f("auto", "'auto' (bf16 on CUDA, fp32 on CPU), 'bfloat16', 'float16' or 'float32'")
    num_frames: int = _f(8, "frames sampled per video (Video-LLaVA uses 8)")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    lora_targets: list = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "language-model projection names that get LoRA adapters",
    )


@dataclass
class TrainConfig:
    objective: str = _f("haca", "'entail' (Yes/No), 'haca' (Yes / No + correction) or 'haca_mask' (haca + masking)")
    seed: int = _f(0, "seed for sampling, dropout and LoRA init")
    max_steps: int = _f(300, "optimizer steps")
    batch_size: int = _f(16, "examples per optimizer step per process (before accumulation)")
    grad_accum: int = _f(1, "gradient accumulation steps")
    lr: float = _f(1e-3, "peak learning rate")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    warmup_steps: int = _f(20, "linear warmup steps")
    schedule: str = _f("cosine", "'cosine' or 'linear' decay after warmup")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    loss_reduction: str = _f("token", "'token' (mean over target tokens) or 'sequence' (mean per example, then over the batch)")
    mask_ratio: float = _f(0.45, "fraction of content words masked in the masking task")
    mixed_precision: str = _f("auto", "'auto' (bf16 on CUDA, none on CPU), 'no', 'bf16' or 'fp16'")
    checkpoint_every: int = _f(100, "save adapter + optimizer + scheduler + RNG every N steps")
    log_every: int = _f(10, "write a JSON-lines metrics record every N steps")
    keep_checkpoints: int = _f(2, "complete checkpoints kept on disk (the newest N; 0 keeps all)")
    packed: bool = _f(True, "one packed sequence per video: the video prefix once, its targets as segments "
                      "(same loss as separate sequences; batch_size then counts videos)")
    max_segments: int = _f(16, "packed: most targets in one packed sequence")
    cache_vision_features: bool = _f(True, "packed: the frozen vision tower runs once per video, its features "
                                     "reused every epoch (same loss; off when the vision side trains)")
    vision_cache_dir: str = _f("", "also keep the cached video features on disk here (safetensors), for later runs; '' = memory only")
    max_cached_videos: int = _f(2048, "decoded videos kept in host memory (least recently used out; 0 = none). 7B: "
                                "8x3x224x224 fp32 = 4.8 MB a video, 2048 = 9.9 GB (VideoCon's >11k train videos "
                                "would need >53 GB); unused while cache_vision_features holds the features")
    max_cached_features: int = _f(2048, "cache_vision_features: videos whose features stay in host memory (least "
                                  "recently used out, then read back from vision_cache_dir or recomputed; 0 = none). "
                                  "7B: 2056x4096 bf16 = 16.8 MB a video, 2048 = 34 GB (all >11k: >185 GB)")
    output_dir: str = _f("runs/finetune", "where checkpoints, metrics and the final adapter go")


def describe(cfg: Any) -> str:
    """One line per field: name = value  # help."""
    return "\n".join(f"{f.name} = {getattr(cfg, f.name)!r}  # {f.metadata.get('help', '')}" for f in fields(cfg))


def to_dict(cfg: Any) -> dict:
    return asdict(cfg)


@dataclass
class PretrainConfig:
    seed: int = _f(0, "seed for the toy model's initial weights, data order and dropout")
    steps: int = _f(4800, "optimizer steps of toy pretraining (all parameters, from scratch)")
    batch_size: int = _f(8, "examples per step per process (packed: videos per step, each with all its examples)")
    packed: bool = _f(True, "one packed sequence per video (prefix once, examples as segments; DESIGN.md section 7)")
    max_segments: int = _f(16, "packed: most examples in one packed sequence")
    lr: float = _f(1e-3, "peak learning rate (3e-3 stayed on the text-only plateau: P(yes) constant)")
    warmup_steps: int = _f(50, "linear warmup steps")
    schedule: str = _f("cosine", "'cosine' or 'linear' decay after warmup")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    image_size: int = _f(32, "frame side the vision tower sees (the toy canvas)")
    position_init: str = _f("random", "CLIP patch position embeddings at init: 'random' (CLIP's) or 'sincos' (2-D, "
                            "so a patch's features say where it is)")
    patch_size: int = _f(8, "vision patch side")
    vision_hidden: int = _f(64, "CLIP vision tower width")
    vision_layers: int = _f(2, "CLIP vision tower depth")
    text_hidden: int = _f(128, "Llama width")
    text_layers: int = _f(2, "Llama depth")
    num_frames: int = _f(8, "frames sampled per video")
    log_every: int = _f(20, "write a metrics record every N steps")
    checkpoint_every: int = _f(500, "checkpoint every N steps (an interrupted pretraining resumes)")
