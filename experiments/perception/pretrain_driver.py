"""Toy Video-LLaVA pretraining on a world's pretraining mix, optionally with a probe-trained, frozen vision tower.

Not part of `hacalib`. The same recipe as `hacalib.training.pretrain.pretrain_toy_model` (same model build, same
packed data, same `train` loop and schedule, no cache), plus:

* `--probe-steps N`: first train the CLIP video tower with the supervised probe objective (`probe_vision.py`) on
  fresh scenes, then freeze it; the projector and the Llama are then pretrained on the mix. The model (projector,
  Llama) is built before the probe runs, so its initial weights and the data order equal the baseline's.
* `--text-hidden`, `--vision-hidden`, `--text-layers`: model widths (PretrainConfig fields).

    OMP_NUM_THREADS=1 .venv/bin/python experiments/perception/pretrain_driver.py /tmp/perc/models/NAME \
        --world /tmp/perc/world7 --steps 1600 [--probe-steps 3000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hacalib.config import PretrainConfig, TrainConfig  # noqa: E402
from hacalib.models import family_of  # noqa: E402
from hacalib.training.loop import train  # noqa: E402
from hacalib.training.pretrain import (PRETRAIN_FILE, build_toy_base, load_pretrain_records,  # noqa: E402
                                       pretrain_examples, pretraining_data, toy_vocabulary)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--world", default="/tmp/perc/world7")
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe-steps", type=int, default=0)
    ap.add_argument("--probe-lr", type=float, default=2e-3)
    ap.add_argument("--vision-from", default=None, help="copy the (probe-trained) video tower of this saved model "
                    "and freeze it, instead of --probe-steps")
    ap.add_argument("--text-hidden", type=int, default=128)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--vision-hidden", type=int, default=64)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    world, out = Path(args.world), Path(args.out)
    cfg = PretrainConfig(steps=args.steps, seed=args.seed, text_hidden=args.text_hidden,
                         text_layers=args.text_layers, vision_hidden=args.vision_hidden)
    records = load_pretrain_records(world / PRETRAIN_FILE)
    model, proc = build_toy_base(cfg, toy_vocabulary(world))
    family = family_of(model)
    family.set_pretraining_trainable(model)
    info: dict = {"args": vars(args), "parameters": sum(p.numel() for p in model.parameters())}
    t0 = time.time()
    if args.probe_steps:
        from probe_vision import train_probe

        with torch.random.fork_rng(devices=[]):
            info["probe"] = train_probe(model, proc, world, args.probe_steps, lr=args.probe_lr, seed=args.seed)
        model.model.video_tower.requires_grad_(False)
    if args.vision_from:
        from hacalib.models import load_model

        src, _ = load_model(args.vision_from, dtype="float32")
        model.model.video_tower.load_state_dict(src.model.video_tower.state_dict())
        model.model.video_tower.requires_grad_(False)
        info["vision_from"] = args.vision_from
    info["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    examples = pretrain_examples(records, family.template)
    dataset, collate = pretraining_data(world, examples, model, proc, cfg)
    run_dir = out.with_name(out.name + ".run")
    shutil.rmtree(run_dir, ignore_errors=True)
    train_cfg = TrainConfig(
        objective="pretrain", seed=cfg.seed, max_steps=cfg.steps, batch_size=cfg.batch_size, grad_accum=1,
        lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, schedule=cfg.schedule,
        max_grad_norm=cfg.max_grad_norm, loss_reduction="token", mixed_precision="no",
        checkpoint_every=10**9, log_every=cfg.log_every, keep_checkpoints=1, output_dir=str(run_dir))
    t1 = time.time()
    result = train(model, dataset, train_cfg, collate_fn=collate, progress=False)
    info["pretrain_seconds"] = time.time() - t1
    info["total_seconds"] = time.time() - t0
    losses = list(result.losses)
    k = max(1, len(losses) // 20)
    info["loss_curve"] = [(i + 1, round(float(sum(losses[max(0, i - k + 1):i + 1]) / len(losses[max(0, i - k + 1):i + 1])), 4))
                          for i in range(k - 1, len(losses), k)]
    info["end_loss"] = losses[-1] if losses else None
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    (out / "perception_run.json").write_text(json.dumps(info, indent=1, default=str))
    print(json.dumps({k: v for k, v in info.items() if k != "loss_curve"}, default=str))
    print("loss", info["loss_curve"])
    return info


if __name__ == "__main__":
    main()
