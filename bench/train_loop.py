"""Benchmark: LoRA fine-tuning steps through `hacalib.training.loop.train` itself (accelerate, mixed precision, the
optimizer, scheduler, clipping, metrics and the final adapter save), packed and padded, on HACA-mask examples.

`bench/training.py` compares the step's arithmetic in one process; this one checks that the whole loop runs at
the paper's shape and reports what a researcher sizes a run by: seconds per optimizer step, training examples
per second and peak GPU memory. The first step (CUDA context, autotuning, allocator warm-up) is left out of the
rate. Prints one JSON line last.

Shapes:
- `small` (default): the toy Video-LLaVA on the CPU, float32 (to check this script).
- `7b`: Video-LLaVA-7B shape with random weights (`bench/scoring.py`'s `build_7b`), bf16 weights, the
  `videollava-7b` preset's TrainConfig (bf16 autocast through accelerate, LoRA r=128 on every Llama projection),
  8 frames of 224 px. Needs CUDA.

Usage: python bench/train_loop.py [--shape small|7b] [--steps 4] [--batch 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from hacalib.presets import preset
from hacalib.training.datasets import training_data
from hacalib.training.loop import train
from hacalib.training.metrics_log import read_metrics


def _bench_module(name: str):
    """A sibling bench script (bench/ is not a package), loaded by path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per mode (the first is not timed)")
    ap.add_argument("--batch", type=int, default=2, help="videos per step, 3 examples each (packed: one row per "
                    "video; padded: one row per example)")
    ap.add_argument("--out", default=None, help="run folders (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    big = args.shape == "7b"
    training = _bench_module("training")
    model, processor, device = training.lora_model(args.shape, 128 if big else 16)
    base_cfg = preset("videollava-7b" if big else "toy").finetune
    n_videos = args.batch * args.steps
    encoded, videos, video_fn = training.make_data(processor, n_videos, 224 if big else 32)
    attn = model.config.text_config._attn_implementation
    out_root = Path(args.out or tempfile.mkdtemp(prefix="train_loop_"))
    report = {"bench": "train_loop", "shape": args.shape, "device": torch.cuda.get_device_name(0) if big else platform.processor() or "cpu",
              "torch": torch.__version__, "steps": args.steps, "batch": args.batch, "modes": {}}
    for mode in ("packed", "padded"):
        dataset, collate = training_data(encoded, videos, video_fn, packed=mode == "packed",
                                         pad_id=processor.tokenizer.pad_token_id, attn_implementation=attn,
                                         source="<bench>")
        # the same examples per step either way: padded rows are examples, packed rows videos of 3 examples
        per_step = args.batch if mode == "packed" else args.batch * len(encoded) // n_videos
        cfg = replace(base_cfg, objective="haca_mask", max_steps=args.steps, batch_size=per_step, grad_accum=1,
                      warmup_steps=1, log_every=1, checkpoint_every=10**6, packed=mode == "packed",
                      cache_vision_features=False, output_dir=str(out_root / mode))
        if big:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = train(model, dataset, cfg, collate_fn=collate, progress=False, resume=False)
        wall = time.perf_counter() - t0
        history = read_metrics(result.metrics_path)
        step_s = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(history, history[1:])]
        examples_per_step = len(encoded) / args.steps
        report["modes"][mode] = {
            "rows_per_step": per_step, "examples_per_step": examples_per_step,
            "median_step_s": statistics.median(step_s) if step_s else None,
            "examples_per_s": examples_per_step / statistics.median(step_s) if step_s else None,
            "losses": [round(r["loss"], 4) for r in history],
            "call_wall_s": round(wall, 1),
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if big else None,
        }
        print(mode, json.dumps(report["modes"][mode]), flush=True)
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":
    main()
