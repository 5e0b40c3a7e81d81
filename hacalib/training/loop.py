"""The training loop: one loop on `accelerate`, the same for the toy model on a CPU and Video-LLaVA-7B on GPUs.

Read `train` top to bottom: set-up, resume, then per optimizer step: `grad_accum` micro-batches (forward,
our own masked loss, backward), clip, step, schedule, log, checkpoint. Launch it in one process or under
`accelerate launch` / `torchrun` (DDP; gloo on CPUs): every process runs this same function.
The loss is `hacalib.training.loss`, the checkpoint store `hacalib.training.checkpoints`, the metrics log
`hacalib.training.metrics_log`.

May import: torch, accelerate, transformers (the scheduler), the other `hacalib.training` building blocks,
`hacalib.config`, `hacalib.io`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset

from ..config import TrainConfig
from ..io import write_json, write_text
from .checkpoints import (
    check_checkpoint,
    check_config,
    check_rng_restored,
    keep_trainable,
    latest_checkpoint,
    read_training_state,
    replace_dir,
    resume_key,
    save_checkpoint,
)
from .datasets import SeededBatchSampler
from .loss import batch_loss
from .metrics_log import metric_lines_upto


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
        vision_cache: a `hacalib.training.feature_cache.VisionFeatureCache` for packed batches with `video_keys`
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
    run_key = resume_key(cfg)
    # names as the checkpoint holds them: without the "module." a DDP wrapper adds (resuming 2 processes failed on it)
    trainable = {n for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad}
    # Checkpoints hold only the trained weights (the LoRA adapter, not the 7B base).
    hook = accelerator.register_save_state_pre_hook(lambda models, weights, _: keep_trainable(models, weights))

    start_step = 0
    latest = latest_checkpoint(ckpt_root) if resume else None
    if latest is not None:
        check_checkpoint(latest, trainable)
        saved = read_training_state(latest)
        check_config(latest, saved["config"], run_key)
        accelerator.load_state(str(latest), strict=False)
        check_rng_restored(latest, accelerator.process_index)
        scheduler.load_state_dict(saved["scheduler"])
        start_step = saved["step"]
    metrics = out / "metrics.jsonl"
    if accelerator.is_main_process:
        write_text(metrics, metric_lines_upto(metrics, start_step))
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
            state = {"step": step, "config": run_key, "scheduler": scheduler.state_dict()}
            save_checkpoint(accelerator, ckpt_root, step, state, keep=cfg.keep_checkpoints)
    bar.close()
    wall = time.perf_counter() - t0
    hook.remove()

    final_dir = out / "final"
    if accelerator.is_main_process:
        tmp = out / ".final.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, safe_serialization=True)
        replace_dir(tmp, final_dir)
    accelerator.wait_for_everyone()
    ran = cfg.max_steps - start_step
    return TrainResult(out, final_dir, start_step, cfg.max_steps, losses, wall, ran * samples_per_step / max(wall, 1e-9))

