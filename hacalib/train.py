"""The training loop: one loop on `accelerate`, the same for the toy model on a CPU and Video-LLaVA-7B on GPUs.

Read `train` top to bottom: set-up, resume, then per optimizer step: `grad_accum` micro-batches (forward,
our own masked loss, backward), clip, step, schedule, log, checkpoint. Launch it in one process or under
`accelerate launch` / `torchrun` (DDP; gloo on CPUs): every process runs this same function.

Loss reduction (`TrainConfig.loss_reduction`), the choice HACA's comparison may hinge on:
- 'token': mean cross-entropy over all target tokens of the micro-batch. An example weighs as much as it
  has target tokens: HACA's `No, <correction>` (~14 tokens) outweighs a `Yes` (1 token + EOS), and the
  deciding `No` is 1 of ~14 tokens, while for the entailment target it is 1 of 2.
- 'sequence': mean cross-entropy per example, then mean over examples. Every example weighs the same,
  so the Yes/No token of a correction example carries ~1/14 of its example's weight.

Batches come either padded, one example per row with HF-convention `labels` (`pad_collate`), or packed,
one video per row with its examples as segments behind the shared prefix and targets already aligned
(`hacalib.datasets.packed_collate`); the loss is the same either way (tested).

Checkpoints (`output_dir/checkpoints/step_NNNNNNNN`) hold the trainable weights (safetensors), the optimizer
and every process's RNG state (accelerate's `save_state`; it reads them back with `weights_only=True`), and
`training_state.json`: the step (the data position: the sampler is a function of it), the configuration and
the LR scheduler's state, as JSON so that resuming unpickles nothing of ours (accelerate's custom objects are
pickles that would be unpickled without the weights-only guard). They are written into a hidden `.partial` folder and renamed when
complete, so a folder with the final name is always whole; resume takes the newest one.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import time
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .config import TrainConfig
from .datasets import SeededBatchSampler
from .errors import DataError
from .io import read_json, write_json, write_text

IGNORE_INDEX = -100
CHECKPOINT_RE = re.compile(r"^step_(\d{8})$")
TRAINING_STATE = "training_state.json"  # in each checkpoint: step, resume key (config), scheduler state
# Fields that may change between an interrupted run and its resumption without changing the result.
RESUMABLE_CHANGES = {"output_dir", "log_every", "checkpoint_every", "keep_checkpoints", "cache_vision_features",
                     "vision_cache_dir", "max_cached_videos", "max_cached_features"}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What `train` did.

    Attributes:
        output_dir: the run folder (checkpoints/, metrics.jsonl, final/).
        final_dir: where `save_pretrained` wrote the trained adapter or model.
        start_step: the step training (re)started from (0 for a fresh run).
        steps: the last optimizer step (== cfg.max_steps).
        losses: the loss of every step this call ran, in order (steps start_step+1 .. steps).
        wall_seconds: time spent in the loop by this call.
        samples_per_second: training examples per second over all processes in this call.
    """

    output_dir: Path
    final_dir: Path
    start_step: int
    steps: int
    losses: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    samples_per_second: float = 0.0

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / "metrics.jsonl"


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token") -> torch.Tensor:
    """Next-token cross-entropy on the target tokens only (labels != -100), computed in float32.

    Args:
        logits: (batch, seq, vocab) model output.
        labels: (batch, seq) token ids aligned with the input (HF convention: position t is predicted
            from positions < t), -100 where there is no target.
        reduction: 'token' (mean over all target tokens) or 'sequence' (mean per example, then over
            the examples that have targets); see the module docstring.
    """
    return target_loss(logits, *_shifted(labels), reduction)


def target_loss(logits: torch.Tensor, targets: torch.Tensor, examples: torch.Tensor, reduction: str = "token") -> torch.Tensor:
    """Cross-entropy of the logits at every position that has a target, computed in float32.

    Args:
        logits: (batch, seq, vocab).
        targets: (batch, seq) the token each position's logits must predict, -100 where none (already
            shifted: packed sequences are not plain shifts of their input).
        examples: (batch, seq) the example each target belongs to (a row, or a packed segment).
        reduction: 'token' (mean over target tokens) or 'sequence' (mean per example, then over examples).
    """
    mask = targets != IGNORE_INDEX
    if not mask.any():
        raise ValueError("batch has no target tokens (every label is -100)")
    # Select the target rows before the float32 upcast: the full logits tensor can be GBs at 7B scale.
    ce = F.cross_entropy(logits[mask].float(), targets[mask], reduction="none")
    if reduction == "token":
        return ce.mean()
    if reduction == "sequence":
        _, example = examples[mask].unique(return_inverse=True)
        sums = torch.zeros(int(example.max()) + 1, device=ce.device).index_add_(0, example, ce)
        return (sums / torch.bincount(example)).mean()
    raise ValueError(f"loss_reduction must be 'token' or 'sequence', got {reduction!r}")


def batch_loss(model: torch.nn.Module, batch: dict[str, Any], reduction: str = "token", *,
               vision_cache: Any = None) -> torch.Tensor:
    """The loss of one collated micro-batch (tensors already on the model's device).

    Padded batches (`labels`) take the plain forward and full logits. Packed batches (`target_labels`,
    `target_segments`) get logits only at the columns that hold a target (`logits_to_keep`: the video
    prefix never reaches the lm_head), and with `vision_cache` and `video_keys` the video features come from
    the cache instead of the vision tower (`hacalib.feature_cache`).

    Args:
        model: the model being trained (peft / accelerate wrappers included).
        batch: a collate_fn's output (see `train`), optionally with `video_keys` and `pixel_rows` (popped here).
        reduction: 'token' or 'sequence' (see `target_loss`).
        vision_cache: a `VisionFeatureCache`, only valid while the vision side is frozen (`train` checks it).
    """
    batch = dict(batch)
    keys = batch.pop("video_keys", None)
    pixel_rows = batch.pop("pixel_rows", None)  # set when some rows' pixels were skipped (features cached)
    if pixel_rows is not None and (vision_cache is None or keys is None):
        raise ValueError("the batch lacks some videos' pixels (their features were cached) but no feature cache is used")
    if "target_labels" not in batch:
        targets, examples = _shifted(batch.pop("labels"))
        return target_loss(model(**batch).logits, targets, examples, reduction)
    targets, examples = batch.pop("target_labels"), batch.pop("target_segments")
    if vision_cache is not None and keys is not None:
        batch = vision_cache.model_inputs(model, batch, keys, pixel_rows)
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    logits = model(**batch, logits_to_keep=keep).logits
    return target_loss(logits, targets[:, keep], examples[:, keep], reduction)


def _shifted(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HF-convention labels -> (targets aligned with the predicting positions, row index of each)."""
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX), rows


def train(
    model: torch.nn.Module,
    train_dataset: Dataset,
    cfg: TrainConfig,
    *,
    collate_fn: Callable[[list[dict]], dict[str, torch.Tensor]],
    accelerator: Any = None,
    resume: bool = True,
    progress: bool = True,
    vision_cache: Any = None,
) -> TrainResult:
    """Train the parameters of `model` that require grad on `train_dataset` for `cfg.max_steps` steps.

    Args:
        model: a `transformers` model (or peft model); the parameters with requires_grad are trained.
        train_dataset: map-style dataset, e.g. `VideoTextDataset` (one example per item) or
            `PackedVideoDataset` (one video's examples per item; `cfg.batch_size` then counts videos).
        cfg: the training configuration (`cfg.output_dir` holds checkpoints, metrics and `final/`).
        collate_fn: items -> dict of tensors: the forward's keyword arguments plus either `labels`
            (HF convention, e.g. `pad_collate`) or `target_labels` + `target_segments` (`packed_collate`).
            No device moves.
        accelerator: a fresh `accelerate.Accelerator` whose gradient_accumulation_steps equals
            cfg.grad_accum; None builds one from cfg (mixed precision 'auto' = bf16 on CUDA).
        resume: continue from the newest complete checkpoint in cfg.output_dir if there is one.
        progress: show a tqdm bar (main process only).
        vision_cache: a `hacalib.feature_cache.VisionFeatureCache` for packed batches with `video_keys`
            (`packed_collate(..., video_keys=True)`): each video's features are computed once and reused
            every epoch. Ignored, with a warning, when the vision tower or projector trains.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    if accelerator is None:
        precision = cfg.mixed_precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "no"
        # cpu=True on a machine without CUDA: otherwise accelerate ignores torchrun's WORLD_SIZE and every
        # process trains alone (gloo DDP needs it).
        accelerator = Accelerator(
            mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum, cpu=not torch.cuda.is_available()
        )
    if accelerator.gradient_accumulation_steps != cfg.grad_accum:
        raise ValueError(f"accelerator accumulates {accelerator.gradient_accumulation_steps} steps, cfg.grad_accum is {cfg.grad_accum}")
    out = Path(cfg.output_dir)
    ckpt_root = out / "checkpoints"
    set_seed(cfg.seed, device_specific=True)  # dropout differs per process; resuming restores these RNGs

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # The scheduler is not prepared: accelerate would step it once per process per optimizer step.
    scheduler = get_scheduler(cfg.schedule, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    resume_key = _resume_key(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # Checkpoints hold only the trained weights (the LoRA adapter, not the 7B base).
    hook = accelerator.register_save_state_pre_hook(lambda models, weights, _: _keep_trainable(models, weights))

    start_step = 0
    latest = latest_checkpoint(ckpt_root) if resume else None
    if latest is not None:
        _check_checkpoint(latest, trainable)
        saved = read_training_state(latest)
        _check_config(latest, saved["config"], resume_key)
        accelerator.load_state(str(latest), strict=False)
        _check_rng_restored(latest, accelerator.process_index)
        scheduler.load_state_dict(saved["scheduler"])
        start_step = saved["step"]
    metrics = out / "metrics.jsonl"
    if accelerator.is_main_process:
        write_text(metrics, _metric_lines_upto(metrics, start_step))
        write_json(out / "train_config.json", asdict(cfg))

    sampler = SeededBatchSampler(
        len(train_dataset), cfg.batch_size, cfg.seed, rank=accelerator.process_index,
        world_size=accelerator.num_processes, start=start_step * cfg.grad_accum,
    )
    # Own generator: the DataLoader must not draw from the global RNG, or resuming would shift dropout.
    loader = DataLoader(train_dataset, batch_sampler=sampler, collate_fn=collate_fn, generator=torch.Generator())
    batches = iter(loader)
    samples_per_step = cfg.batch_size * cfg.grad_accum * accelerator.num_processes

    model.train()
    if vision_cache is not None:
        from .feature_cache import vision_is_frozen

        if not vision_is_frozen(model):
            warnings.warn("the vision tower or projector trains (or has active dropout): video features are "
                          "computed every step, the feature cache is not used")
            vision_cache = None
    losses: list[float] = []
    t0 = t_log = time.perf_counter()
    logged = start_step
    bar = tqdm(total=cfg.max_steps, initial=start_step, disable=not (progress and accelerator.is_local_main_process), desc="train")
    for step in range(start_step + 1, cfg.max_steps + 1):
        loss_sum = torch.zeros((), device=accelerator.device)
        for _ in range(cfg.grad_accum):
            batch = {k: v.to(accelerator.device) if isinstance(v, torch.Tensor) else v for k, v in next(batches).items()}
            with accelerator.accumulate(model):
                with accelerator.autocast():  # the cache's vision tower runs outside the model's autocast forward
                    loss = batch_loss(model, batch, cfg.loss_reduction, vision_cache=vision_cache)
                accelerator.backward(loss)  # divides by grad_accum; DDP syncs on the last micro-batch
            loss_sum += loss.detach()
        step_loss = accelerator.reduce(loss_sum / cfg.grad_accum, reduction="mean").item()
        if not math.isfinite(step_loss):
            raise TrainingDiverged(f"loss is {step_loss} at step {step} (lr {scheduler.get_last_lr()[0]:.3g}); see {metrics}")
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm).item()
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: keep the schedule aligned
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}")

        if accelerator.is_main_process and (step % cfg.log_every == 0 or step == cfg.max_steps):
            now = time.perf_counter()
            record = {
                "step": step, "loss": step_loss, "lr": lr, "grad_norm": grad_norm,
                "samples_per_s": (step - logged) * samples_per_step / max(now - t_log, 1e-9), "elapsed_s": now - t0,
            }
            with metrics.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            t_log, logged = now, step
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            state = {"step": step, "config": resume_key, "scheduler": scheduler.state_dict()}
            save_checkpoint(accelerator, ckpt_root, step, state, keep=cfg.keep_checkpoints)
    bar.close()
    wall = time.perf_counter() - t0
    hook.remove()

    final_dir = out / "final"
    if accelerator.is_main_process:
        tmp = out / ".final.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, safe_serialization=True)
        _replace_dir(tmp, final_dir)
    accelerator.wait_for_everyone()
    ran = cfg.max_steps - start_step
    return TrainResult(out, final_dir, start_step, cfg.max_steps, losses, wall, ran * samples_per_step / max(wall, 1e-9))


def save_checkpoint(accelerator: Any, ckpt_root: Path, step: int, state: dict, keep: int = 2) -> Path:
    """Write a complete checkpoint for `step` (all processes call this) and keep the newest `keep`.

    Args:
        accelerator: the run's accelerator (`save_state` writes weights, optimizer and RNG states).
        ckpt_root: the checkpoints folder.
        step: the optimizer step just finished.
        state: the training state written as `training_state.json`, plain JSON: {"step", "config",
            "scheduler"} (see `read_training_state`).
        keep: complete checkpoints kept (the newest; 0 keeps all).
    """
    final = ckpt_root / f"step_{step:08d}"
    partial = ckpt_root / f".step_{step:08d}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        # no default=str: a scheduler state that is not plain JSON must fail here, not come back altered
        text = json.dumps(state, indent=2, sort_keys=True, allow_nan=False)
        write_text(partial / TRAINING_STATE, text + "\n")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _replace_dir(partial, final)
        for old in _checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
            doomed = old.with_name(f".{old.name}.deleting")  # never leave a half-deleted step_ folder
            old.rename(doomed)
            shutil.rmtree(doomed)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under `ckpt_root`, or None."""
    found = _checkpoints(Path(ckpt_root))
    return found[-1] if found else None


def _checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and CHECKPOINT_RE.match(p.name))


def _replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place; an older `dst` is moved aside first, then removed."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dst.rename(old)
        src.rename(dst)
        shutil.rmtree(old)
    else:
        src.rename(dst)


def _keep_trainable(models: list[torch.nn.Module], weights: list[dict]) -> None:
    for i, (model, sd) in enumerate(zip(models, weights)):
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        weights[i] = OrderedDict((k, v) for k, v in sd.items() if k in names)


def _resume_key(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES}


def _check_checkpoint(ckpt: Path, trainable: set[str]) -> None:
    """Refuse a checkpoint whose weights do not match the model's trainable parameters."""
    weights = ckpt / "model.safetensors"
    if not weights.is_file():  # FSDP / DeepSpeed write their own layouts
        return
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        saved = set(f.keys())
    if saved != trainable:
        extra, missing = sorted(saved - trainable), sorted(trainable - saved)
        key = (extra or missing)[0]
        raise DataError(weights, f"checkpoint does not match the model: {len(extra)} unexpected and {len(missing)} missing trainable weights", key=key)


def read_training_state(ckpt: str | Path) -> dict:
    """A checkpoint's `training_state.json`: {"step": int, "config": dict, "scheduler": dict}."""
    path = Path(ckpt) / TRAINING_STATE
    if not path.is_file() and any(Path(ckpt).glob("custom_checkpoint_*.pkl")):
        raise DataError(path, "checkpoint written by an older hacalib (pickled training state, not loaded for "
                        "safety); use a new output_dir or resume=False")
    state = read_json(path)
    kinds = {"step": int, "config": dict, "scheduler": dict}
    if not isinstance(state, dict):
        raise DataError(path, "training state is not a JSON object")
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise DataError(path, f"training state lacks {key!r} or it is not a {kind.__name__}", key=key)
    return state


def _check_rng_restored(ckpt: Path, process_index: int) -> None:
    """accelerate's `load_state` only logs when it cannot read a process's RNG states; a resume without them
    would silently diverge (dropout), so compare the torch RNG with the saved one (read with weights_only)."""
    from accelerate.utils import load

    path = ckpt / f"random_states_{process_index}.pkl"
    try:
        saved = load(path, weights_only=True)["torch_manual_seed"]
    except Exception as exc:
        raise DataError(path, f"RNG states unreadable ({exc})") from exc
    if not torch.equal(saved, torch.get_rng_state()):
        raise DataError(path, "RNG states were not restored by accelerate's load_state")


def _check_config(ckpt: Path, saved: dict, current: dict) -> None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise DataError(ckpt, f"checkpoint was trained with {key}={saved.get(key)!r}, config now says {current.get(key)!r}; use a new output_dir or resume=False", key=key)


def _metric_lines_upto(path: Path, step: int) -> str:
    """The metrics log's records up to `step` (a resumed run rewrites what came after its checkpoint)."""
    if step == 0 or not path.is_file():
        return ""
    kept = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the interruption
        if not isinstance(record, dict) or "step" not in record:
            raise DataError(path, "metrics record without a step", row=row)
        if record["step"] <= step:
            kept.append(line + "\n")
    return "".join(kept)


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON-lines metrics log written by `train` (one dict per logged step)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "metrics log not found")
    out = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON: {exc.msg}", row=row) from exc
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m hacalib.train --config run.json [--data-root DIR] [--base-model PATH] [overrides]`.

    LoRA fine-tuning (`hacalib.finetune.finetune`) from the command line. run.json:
    {"data_root": ..., "base_model": ..., "out_dir": ..., "train": {TrainConfig fields},
    "model": {ModelConfig fields}, "duplicates": "error" | "drop" | "keep", "missing_videos": "error" | "skip"}.
    Runs in one process or under `accelerate launch` / `torchrun` (DDP).
    """

    from .config import ModelConfig
    from .finetune import finetune
    from .io import read_json

    parser = argparse.ArgumentParser(description="LoRA fine-tuning of a Video-LLaVA model on VideoCon-format data")
    parser.add_argument("--config", help="JSON run file (see the docstring)")
    parser.add_argument("--data-root")
    parser.add_argument("--base-model")
    parser.add_argument("--out-dir")
    parser.add_argument("--objective", choices=["entail", "haca", "haca_mask"])
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--duplicates", choices=["error", "drop", "keep"],
                        help="rows of the VideoCon CSV repeated exactly (default: the run file's, else error)")
    parser.add_argument("--missing-videos", choices=["error", "skip"],
                        help="training rows whose video is absent (default: the run file's, else error)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    run = read_json(args.config) if args.config else {}
    cfg = TrainConfig(**run.get("train", {}))
    overrides = {"objective": args.objective, "max_steps": args.max_steps, "seed": args.seed}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    data_root = args.data_root or run.get("data_root")
    base_model = args.base_model or run.get("base_model")
    out_dir = args.out_dir or run.get("out_dir")
    if not (data_root and base_model and out_dir):
        parser.error("--data-root, --base-model and --out-dir (or the run file's keys) are required")
    tagger = None
    if (Path(data_root) / "toyworld.json").is_file():  # toy captions: the grammar's own word classes
        from .masking import WordClassTagger
        from .toyworld import word_class

        tagger = WordClassTagger(word_class)
    with torch.random.fork_rng(devices=[]):  # peft draws the adapter init from the global RNG
        torch.manual_seed(cfg.seed)
        out = finetune(base_model, data_root, cfg, ModelConfig(**run.get("model", {})), out_dir, tagger=tagger,
                       progress=not args.no_progress, duplicates=args.duplicates or run.get("duplicates", "error"),
                       missing_videos=args.missing_videos or run.get("missing_videos", "error"))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
