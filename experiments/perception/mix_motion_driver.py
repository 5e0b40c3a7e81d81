"""Pretraining on the world's mix plus a fixed share of fresh-scene motion/order questions, with a frozen
probe-trained vision tower (or none frozen).

Not part of `hacalib`. Every step: one batch of the world's own packed pretraining mix (8 videos, the loss
`hacalib.training.loss.batch_loss` uses) plus one batch of --motion-batch one-word questions about fresh scenes
(`experiments/motion/fresh_scenes.py`: the world's sampler and renderer, kinds where/first/second/when by
default, 1-3 shapes, 1-3 events, all seven actions), loss = mix + --motion-weight * questions. AdamW lr 1e-3,
50 warmup steps, cosine (the toy pretraining schedule); the mix batches are drawn with numpy (seed 0), not with
hacalib's SeededBatchSampler, so the data order differs from `pretrain_driver.py`'s.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/perception/mix_motion_driver.py /tmp/perc/models/NAME \
        --vision-from /tmp/perc/models/probe3000-s2400 --steps 2400 --motion-batch 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "motion"))

from fresh_scenes import draw, held_out_accuracy, question_loss, scene_options  # noqa: E402

from hacalib.config import PretrainConfig  # noqa: E402
from hacalib.models import family_of, load_model, num_video_tokens  # noqa: E402
from hacalib.training.loss import batch_loss  # noqa: E402
from hacalib.training.pretrain import (PRETRAIN_FILE, build_toy_base, load_pretrain_records,  # noqa: E402
                                       pretrain_examples, pretraining_data, toy_vocabulary)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--world", default="/tmp/perc/world7")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-from", default=None, help="copy and freeze this saved model's video tower")
    ap.add_argument("--motion-batch", type=int, default=8)
    ap.add_argument("--motion-weight", type=float, default=1.0)
    ap.add_argument("--kinds", default="where,first,second,when")
    ap.add_argument("--text-hidden", type=int, default=128)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    world, out = Path(args.world), Path(args.out)
    cfg = PretrainConfig(steps=args.steps, seed=args.seed, text_hidden=args.text_hidden)
    model, proc = build_toy_base(cfg, toy_vocabulary(world))
    family = family_of(model)
    family.set_pretraining_trainable(model)
    if args.vision_from:
        src, _ = load_model(args.vision_from, dtype="float32")
        model.model.video_tower.load_state_dict(src.model.video_tower.state_dict())
        model.model.video_tower.requires_grad_(False)
    dataset, collate = pretraining_data(world, pretrain_examples(load_pretrain_records(world / PRETRAIN_FILE),
                                                                 family.template), model, proc, cfg)
    kinds = args.kinds.split(",")
    scene_opts = scene_options(world, "1,3", moves_only=False)
    nvt = num_video_tokens(proc, len(scene_opts["sampled"]))
    held_out = draw(np.random.default_rng(123), 256, kinds=kinds, max_agents=3, **scene_opts)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    warm = cfg.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + np.cos(np.pi * (s - warm) / max(1, args.steps - warm))))
    torch.manual_seed(args.seed)
    rng, t0 = np.random.default_rng(args.seed), time.time()
    log = []
    model.train()
    for step in range(1, args.steps + 1):
        idx = rng.choice(len(dataset), size=cfg.batch_size, replace=False)
        world_loss = batch_loss(model, collate([dataset[int(i)] for i in idx]))
        loss = world_loss
        if args.motion_batch:
            items = draw(rng, args.motion_batch, kinds=kinds, max_agents=3, **scene_opts)
            motion_loss = question_loss(model, proc, items, nvt)
            loss = world_loss + args.motion_weight * motion_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        if step % 600 == 0 or step == args.steps:
            by = held_out_accuracy(model, proc, held_out, nvt, kinds, 3)
            rec = {"step": step, "world": round(world_loss.item(), 4),
                   "motion": round(motion_loss.item(), 4) if args.motion_batch else None, "held_out": by,
                   "seconds": round(time.time() - t0)}
            log.append(rec)
            print(json.dumps(rec), flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    info = {"args": vars(args), "log": log, "seconds": time.time() - t0}
    (out / "perception_run.json").write_text(json.dumps(info, indent=1))
    return info


if __name__ == "__main__":
    main()
