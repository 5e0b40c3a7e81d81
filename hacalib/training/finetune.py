"""Fine-tuning a Video-LLM with LoRA on VideoCon-format data under one objective (entail / haca / haca_mask).

    finetune(base_model, data_root, TrainConfig(objective="haca", seed=0), ModelConfig(), "runs/haca-s0")

loads the base model (a toy model folder or the hub model), puts LoRA on the language model's projections, builds
the objective's examples from the VideoCon `train` split (the same videos for every objective), trains them with
`hacalib.training.loop.train`, and saves the adapter with a `finetune.json` marker (`hacalib.training.runs`). A
finished run with the same cache key (configuration, prompt version, base model, training data) is returned without
training again. Everything model-specific (prompts, video tokens, processor, LoRA targets) comes from the model's
family (`hacalib.models.family_of`).

May import: `hacalib.config`, `hacalib.prompts`, `hacalib.data`, `hacalib.models`, `hacalib.io`, `hacalib.errors`,
the other `hacalib.training` modules.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .. import prompts
from ..config import ModelConfig, TrainConfig, result_neutral_fields
from ..data import load_videocon, to_triplets
from ..data.integrity import check_videos
from ..data.layout import DataRoot
from ..errors import DataError
from ..io import read_json
from ..models import (VideoStore, add_lora, answer_token_ids, family_of, load_model, num_video_tokens,
                      processed_video_fn)
from .datasets import training_data
from .examples import build_examples, count_by_kind, encode
from .feature_cache import VisionFeatureCache, vision_is_frozen
from .loop import train
from .masking import Tagger
from .runs import finish_run, run_dir_for
from .runs import is_finished as _is_finished

MARKER = "finetune.json"

MISSING_VIDEO_POLICIES = ("error", "skip")


def training_triplets(root: DataRoot, split: str = "train", *, duplicates: str = "error",
                      missing_videos: str = "error", num_frames: int = 8) -> tuple[list, dict]:
    """HACA triplets of the VideoCon `split` rows under `root`, and the counts of rows left out on request.

    Videos are checked before training (present, and decodable or matching the toy world's manifest), so a missing or
    corrupt file names its CSV row instead of stopping a run halfway.

    Args:
        root: the data root.
        split: the VideoCon split to train on.
        duplicates: `load_videocon`'s policy for rows repeated exactly: 'error', 'drop' or 'keep'.
        missing_videos: 'error' (default: the first missing video's row, with the total) or 'skip' (leave those
            rows out; the count is returned). Real VideoCon downloads often lack some YouTube-sourced clips.
        num_frames: frames the model samples per video (checked to be there, with the decode check).
    Returns (triplets, {"duplicate_rows_dropped": n, "rows_skipped_missing_video": m}) for the run record.
    """
    if missing_videos not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"missing_videos must be one of {MISSING_VIDEO_POLICIES}, got {missing_videos!r}")

    def load(policy: str) -> list:
        return load_videocon(root.videocon_csv, video_root=root.videocon_videos, duplicates=policy)

    rows = load(duplicates)
    dropped = len(load("keep")) - len(rows) if duplicates == "drop" else 0
    rows = [r for r in rows if r.split == split]
    if not rows:
        raise DataError(root.videocon_csv, f"no rows with split {split!r}")
    missing = [r for r in rows if not Path(r.video_path).is_file()]
    if missing and missing_videos == "error":
        raise DataError(root.videocon_csv, f"video not found: {missing[0].video_path} ({len(missing)} of {len(rows)} "
                        f"{split!r} rows lack their video; missing_videos='skip' trains without them)",
                        row=missing[0].row, key="videopath")
    if missing:
        gone = {r.row for r in missing}
        rows = [r for r in rows if r.row not in gone]
        if not rows:
            raise DataError(root.videocon_csv, f"every {split!r} row lacks its video")
    # present is not enough: a truncated or corrupt video must fail now, not at the step that first reads it
    check_videos([(r.video_path, root.videocon_csv, r.row, "videopath") for r in rows], num_frames=num_frames,
                 what="training videos")
    return to_triplets(rows), {"duplicate_rows_dropped": dropped, "rows_skipped_missing_video": len(missing)}


def _missing_rows(root: DataRoot, split: str = "train") -> list:
    rows = load_videocon(root.videocon_csv, video_root=root.videocon_videos, duplicates="keep")
    return [r for r in rows if r.split == split and not Path(r.video_path).is_file()]


def base_model_id(base_model: str | Path) -> dict:
    """What identifies the base model in a cache key: a toy folder's pretraining key, or the hub id."""
    marker = Path(base_model) / "pretrain.json"
    if marker.is_file():
        return {"toy": read_json(marker)["cache_key"]}
    return {"hub_or_path": str(base_model)}


def cache_key(cfg: TrainConfig, model_cfg: ModelConfig, base_model: str | Path, root: DataRoot, *,
              duplicates: str = "error", missing_videos: str = "error") -> str:
    h = hashlib.sha256()
    neutral = result_neutral_fields(TrainConfig)  # how a run is logged or cached, not what it learns
    train_fields = {k: v for k, v in asdict(cfg).items() if k not in neutral}
    what = {"train": train_fields, "model": asdict(model_cfg), "base": base_model_id(base_model),
            "prompt_version": prompts.PROMPT_VERSION}
    # only a non-default policy can change the rows trained on; left out otherwise, so earlier keys stay valid
    if duplicates != "error":
        what["duplicates"] = duplicates
    if missing_videos != "error":  # which videos are present is not in the CSV: the names of the skipped ones are
        what["missing_videos"] = sorted({r.videopath for r in _missing_rows(root)})
    h.update(json.dumps(what, sort_keys=True, default=str).encode())
    h.update(root.videocon_csv.read_bytes())
    return h.hexdigest()


def is_finished(out_dir: str | Path, key: str) -> bool:
    """Whether `out_dir` holds a finished fine-tuning run with cache key `key`."""
    return _is_finished(out_dir, MARKER, key)


def split_step(batch_size: int, grad_accum: int, processes: int) -> tuple[int, int]:
    """(batch_size, grad_accum) per process that make one optimizer step of `processes` processes take the same
    batch_size x grad_accum examples as one process: the accumulation divided first (each micro-batch keeps its
    size, so its memory), else the micro-batch, else the largest micro-batch up to `batch_size` that fits. The
    sampler's global micro-batches (`SeededBatchSampler`) then give each step the very examples of a one-process
    step."""
    total = batch_size * grad_accum
    if total % processes:
        raise ValueError(f"a step of {batch_size} x {grad_accum} (batch_size x grad_accum) examples cannot be shared "
                         f"equally by {processes} processes; use a process count that divides {total}")
    each = total // processes
    if grad_accum % processes == 0:
        return batch_size, grad_accum // processes
    if batch_size % processes == 0:
        return batch_size // processes, grad_accum
    b = max(d for d in range(1, min(batch_size, each) + 1) if each % d == 0)
    return b, each // b


def _processes() -> int:
    """How many processes run this training (1 outside `accelerate launch` / torchrun)."""
    import torch
    from accelerate import PartialState

    # cpu=True without CUDA, as the loop's Accelerator: the state is shared, and must see torchrun's world
    return PartialState(cpu=not torch.cuda.is_available()).num_processes


def finetune(
    base_model: str | Path,
    data_root: str | Path | DataRoot,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    out_dir: str | Path,
    *,
    tagger: Tagger | None = None,
    progress: bool = True,
    duplicates: str = "error",
    missing_videos: str = "error",
    global_batch: bool = False,
    video_store: VideoStore | None = None,
) -> Path:
    """Train a LoRA adapter for `cfg.objective` and return `out_dir` (adapter + finetune.json + metrics.jsonl).

    Args:
        base_model: toy model folder or hub id / local path of the real model (`hacalib.models.load_model`).
        data_root: data root with videocon/ (the VideoCon `train` split is used).
        cfg: training configuration (objective, seed, steps, ...). `cfg.output_dir` is ignored: checkpoints of an
            unfinished run live in `<out_dir>.run/` and are resumed.
        model_cfg: LoRA rank/alpha/dropout/targets, frames, dtype.
        out_dir: where the adapter is saved.
        tagger: part-of-speech tagger for the masking task (default spaCy; the toy world passes its grammar's).
        progress: show a progress bar.
        duplicates: rows of the VideoCon CSV repeated exactly: 'error' (default), 'drop' (the count dropped goes
            into finetune.json) or 'keep' (`load_videocon`'s policies).
        missing_videos: training rows whose video file is absent: 'error' (default) or 'skip' (the count goes into
            finetune.json).
        global_batch: under several processes, `cfg.batch_size` x `cfg.grad_accum` is the whole step, shared among
            them (`split_step`: the same examples per step as one process, and the same cache key); default False:
            `cfg.batch_size` is per process, as the loop reads it. finetune.json records the process count (> 1).
        video_store: a `hacalib.models.VideoStore` whose processed videos this run reads and adds to (runs of one
            experiment decode each video once); None: decoded by this run (the pixels are the same).
    """
    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    out = Path(out_dir)
    key = cache_key(cfg, model_cfg, base_model, root, duplicates=duplicates, missing_videos=missing_videos)
    if is_finished(out, key):
        return out
    # the data first: a bad row or a missing video fails in seconds, not after loading a 7B model
    triplets, left_out = training_triplets(root, duplicates=duplicates, missing_videos=missing_videos,
                                           num_frames=model_cfg.num_frames)

    model, processor = load_model(base_model, revision=model_cfg.revision or None, dtype=model_cfg.dtype)
    family = family_of(model)
    model.requires_grad_(False)
    model = add_lora(model, r=model_cfg.lora_r, alpha=model_cfg.lora_alpha, dropout=model_cfg.lora_dropout,
                     targets=model_cfg.lora_targets, seed=cfg.seed)  # the adapter's init from the run's seed
    tok = processor.tokenizer
    examples = build_examples(cfg.objective, triplets, mask_ratio=cfg.mask_ratio, seed=cfg.seed, tagger=tagger,
                              source=str(root.videocon_csv), template=family.template)
    n_video = num_video_tokens(processor, model_cfg.num_frames)
    answer_ids = answer_token_ids(tok, family.template)
    encoded = [encode(e, tok, n_video, answer_ids=answer_ids, template=family.template) for e in examples]
    vision_cache, pixel_cache, need_pixels = None, cfg.max_cached_videos, None
    video_fn = (processed_video_fn(processor, model_cfg.num_frames) if video_store is None
                else video_store.video_fn(processor, model_cfg.num_frames))  # the same pixels either way
    if cfg.packed and cfg.cache_vision_features:  # the frozen vision tower once per video, not once per epoch
        identity = json.dumps({"base": base_model_id(base_model), "revision": model_cfg.revision,
                               "dtype": model_cfg.dtype, "frames": model_cfg.num_frames,
                               "precision": cfg.mixed_precision}, sort_keys=True)
        vision_cache = VisionFeatureCache(identity, directory=cfg.vision_cache_dir or None,
                                          max_videos=cfg.max_cached_features)
        if vision_is_frozen(model.train()):  # else `train` warns and runs the tower on pixels every step
            # pixels are needed only until a video's features are cached: no pixel cache, no decoding after
            pixel_cache, need_pixels = 0, (lambda key, cache=vision_cache: not cache.has(key))
    # packed (default): a video's targets behind one shared prefix (PROTOCOL.md, "Packed scoring" and "Packed training")
    dataset, collate = training_data(
        encoded, [str(e.video) for e in examples], video_fn, packed=cfg.packed, pad_id=tok.pad_token_id, attn_implementation=family.attn_implementation(model),
        source=root.videocon_csv, max_segments=cfg.max_segments, max_cached_videos=pixel_cache,
        need_pixels=need_pixels, video_keys=cfg.packed and cfg.cache_vision_features)

    processes = _processes() if global_batch else 1  # the one-process path makes no accelerate state before `train`
    per_process = {}
    if global_batch and processes > 1:
        b, a = split_step(cfg.batch_size, cfg.grad_accum, processes)
        per_process = {"batch_size": b, "grad_accum": a}
    run_cfg = replace(cfg, output_dir=str(run_dir_for(out)), **per_process)
    result = train(model, dataset, run_cfg, collate_fn=collate, progress=progress, vision_cache=vision_cache)

    def summary(history: list[dict]) -> dict:
        return {
            "cache_key": key,
            "objective": cfg.objective,
            "train_config": asdict(cfg),
            "model_config": asdict(model_cfg),
            "base_model": base_model_id(base_model),
            "prompt_version": prompts.PROMPT_VERSION,
            "videos": len({str(e.video) for e in examples}),
            "duplicates": duplicates,
            "missing_videos": missing_videos,
            **left_out,
            "resumed_from_step": result.start_step,
            "examples": count_by_kind(examples),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "end_loss": history[-1]["loss"] if history else None,
            "train_seconds": result.wall_seconds,
            "samples_per_second": result.samples_per_second,
            "steps_per_second": (cfg.max_steps - result.start_step) / max(result.wall_seconds, 1e-9),
            # several processes train the same examples per step, not the same floats (gradients reduced across
            # processes, per-process dropout streams): recorded, so a table can say how its runs were trained
            **({"processes": processes, "per_process": {"batch_size": run_cfg.batch_size,
                                                        "grad_accum": run_cfg.grad_accum}} if processes > 1 else {}),
        }

    def adapter_files(tmp: Path) -> None:
        for f in result.final_dir.iterdir():
            shutil.copy(f, tmp / f.name)

    return finish_run(out, result, MARKER, summary, adapter_files)


def load_finetuned(base_model: str | Path, adapter_dir: str | Path, *, dtype: str = "auto",
                   device: Any = None, merge: bool = True):
    """The base model with a trained adapter (eval mode) and its processor.

    merge: fold the adapter into the weights it adapts (peft's `merge_and_unload`; the model is then of the
        base model's class): the same function with one matmul per projection instead of three, 1.4-1.8x faster
        toy evaluation (PROTOCOL.md "Evaluating a fine-tuned model"). False: the peft model (e.g. to switch the
        adapter off with `disable_adapter`).
    """
    from ..models import load_adapter

    model, processor = load_model(base_model, dtype=dtype, device=device)
    model = load_adapter(model, adapter_dir)
    if merge:
        model = model.merge_and_unload()
    return model.eval(), processor
