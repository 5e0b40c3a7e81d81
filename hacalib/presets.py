"""Presets: which model, which data, how long to train, how much to evaluate. Configuration, not a fork.

`preset("toy")` is what `haca reproduce` runs on a CPU (`family="videochat2"` for its second model);
`preset("toy", smoke=True)` is the tiny version the tests and `--smoke` run; `preset("videollava-7b")` and
`preset("videochat2-7b")` are the paper's settings (real model, real data under a data_root).

May import: `hacalib.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .config import FAMILY_LABELS, ModelConfig, PretrainConfig, TrainConfig  # noqa: F401 (FAMILY_LABELS re-exported)


@dataclass(frozen=True)
class Preset:
    name: str
    smoke: bool
    model: ModelConfig
    family: str  # the model family (`hacalib.models.FAMILIES`): 'video_llava' or 'videochat2'
    finetune: TrainConfig  # objective and seed are set per run
    base_seeds: tuple = (0,)  # base models (toy: pretraining seeds; the paper's hub model is one base, 0)
    seeds: tuple = (0, 1, 2)  # fine-tuning seeds on every base model
    pretrain: PretrainConfig | None = None  # toy only: the base model is trained here
    base_model: str = ""  # paper preset: hub id or key of hacalib.models.MODELS ('' : the user's folder, model_path)
    velociti_per_test: int | None = None  # items per VELOCITI test (None: all)
    videocon_heldout: int | None = None  # held-out VideoCon rows (None: all)
    qa_questions: int | None = None  # MSRVTT-QA questions (None: all)
    score_batch: int = 16  # packed sequences per forward when scoring
    keep_videos: bool = False  # processed videos kept in memory across an experiment's models (small videos only)
    models_in_memory: int | None = None  # loaded models an experiment keeps (None: every one; 7B: ~15 GB each)
    mask_ratios: tuple = (0.0, 0.15, 0.30, 0.45, 0.60)
    duplicates: str = "error"  # VideoCon rows repeated exactly: 'error', 'drop' (counted in finetune.json) or 'keep'
    missing_videos: str = "error"  # training rows whose video is absent: 'error' or 'skip' (counted in finetune.json)
    extra: dict = field(default_factory=dict)


# each preset's model families, the first its default: the toy preset has both of the paper's models, a paper preset
# is one real model
PRESET_FAMILIES = {"toy": ("video_llava", "videochat2"), "videollava-7b": ("video_llava",),
                   "videochat2-7b": ("videochat2",)}
PRESETS = tuple(PRESET_FAMILIES)


def family_slug(family: str) -> str:
    """A family in folder names: 'videollava', 'videochat2' (the shipped bases' `toy-<slug>-seed<N>`)."""
    return family.replace("_", "")


def preset(name: str = "toy", *, smoke: bool = False, family: str | None = None) -> Preset:
    """The preset `name` for model family `family` (None: the preset's first)."""
    if name not in PRESET_FAMILIES:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    family = family or PRESET_FAMILIES[name][0]
    if family not in PRESET_FAMILIES[name]:
        raise ValueError(f"preset {name!r} has no model family {family!r}; it has: {', '.join(PRESET_FAMILIES[name])}")
    if name == "toy":
        return _toy(smoke, family)
    if name == "videollava-7b":
        return _videollava_7b(smoke)
    return _videochat2_7b(smoke)


def _toy(smoke: bool, family: str) -> Preset:
    # both families get the same recipe (widths, steps, LoRA, fine-tuning): they differ in architecture only
    model = ModelConfig(preset="toy", dtype="float32", lora_r=16, lora_alpha=32, lora_dropout=0.0)
    pretrain_family = {} if family == "video_llava" else {"family": family}
    if smoke:
        return Preset(
            name="toy", smoke=True, model=model, family=family, base_seeds=(0, 1), seeds=(0, 1),
            pretrain=PretrainConfig(steps=30, warmup_steps=3, batch_size=4, log_every=5, checkpoint_every=1000,
                                    **pretrain_family),
            finetune=TrainConfig(max_steps=8, batch_size=4, warmup_steps=2, lr=2e-3, log_every=2,
                                 checkpoint_every=1000),
            velociti_per_test=6, videocon_heldout=14, qa_questions=12, score_batch=8, keep_videos=True,
        )
    # 3 base models x 2 fine-tuning seeds: the base model is the larger source of variance (PROTOCOL "Intervals")
    return Preset(
        name="toy", smoke=False, model=model, family=family, base_seeds=(0, 1, 2), seeds=(0, 1),
        pretrain=PretrainConfig(**pretrain_family),
        finetune=TrainConfig(max_steps=200, batch_size=8, warmup_steps=20, lr=2e-3, log_every=10,
                             checkpoint_every=100),
        velociti_per_test=None, videocon_heldout=None, qa_questions=None, score_batch=16, keep_videos=True,
    )


def _paper_finetune(smoke: bool) -> TrainConfig:
    finetune = TrainConfig(max_steps=2000, batch_size=2, grad_accum=4, lr=2e-4, warmup_steps=60,
                           mixed_precision="bf16", log_every=10, checkpoint_every=200)
    if smoke:
        finetune = replace(finetune, max_steps=4, grad_accum=1, warmup_steps=1, checkpoint_every=1000)
    return finetune


def _paper_limits(smoke: bool) -> dict:
    # The released VideoCon CSV repeats some rows verbatim; VideoCon's own training script drops them.
    # A notebook asks for up to 10 runs' models (pretrained + 3 objectives x 3 seeds): one 7B model at a time fits a
    # GPU, all of them (~150 GB) do not.
    return {"duplicates": "drop", "velociti_per_test": 8 if smoke else None,
            "videocon_heldout": 16 if smoke else 1000, "qa_questions": 16 if smoke else None, "score_batch": 4,
            "models_in_memory": 1}


def _videollava_7b(smoke: bool) -> Preset:
    model = ModelConfig(preset="videollava-7b", dtype="bfloat16", lora_r=128, lora_alpha=256, lora_dropout=0.05)
    return Preset(name="videollava-7b", smoke=smoke, model=model, family="video_llava",
                  finetune=_paper_finetune(smoke), base_model="videollava-7b", **_paper_limits(smoke))


def _videochat2_7b(smoke: bool) -> Preset:
    # VideoChat2's own stage-3 LoRA (r 16, alpha 32, dropout 0.1); HACA's training recipe otherwise, as for
    # Video-LLaVA (PROTOCOL.md "VideoChat2"). The model is the folder `haca convert-videochat2` wrote: no hub id.
    model = ModelConfig(preset="videochat2-7b", dtype="bfloat16", lora_r=16, lora_alpha=32, lora_dropout=0.1)
    return Preset(name="videochat2-7b", smoke=smoke, model=model, family="videochat2",
                  finetune=_paper_finetune(smoke), base_model="", **_paper_limits(smoke))
