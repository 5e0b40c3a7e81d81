"""Diagnostic (issue 4): does an order-capable toy model keep motion and order through the world's pretraining mix
when every step also carries a batch of fresh-scene motion and order questions? And does flip then rise?

Not part of the library or of `haca reproduce`. Each step adds two losses: one batch of the world's own pretraining
mix (`hacalib.training.pretrain.pretraining_data`, packed, batch 8 videos, the loss `hacalib.training.loss` uses) and one batch of
fresh-scene questions (`fresh_scenes.draw`, batch 32, one-word answers). AdamW, 50 warmup steps, cosine decay.
At the end it saves the model and, with --evaluate, prints the world's toy MSRVTT-QA exact match by question
word and held-out toy VideoCon pairwise accuracy by misalignment type (the pretrained row of figures/02);
--finetune entail,haca fine-tunes the result as the toy preset does and evaluates each the same way; --steps 0
evaluates (and fine-tunes) the --init model as it is.

    .venv/bin/python experiments/motion/mix_with_motion.py OUT --init ORDER_MODEL --steps 2400 --evaluate
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fresh_scenes import draw, held_out_accuracy, question_loss, scene_options  # noqa: E402

from hacalib.config import PretrainConfig  # noqa: E402
from hacalib.models import load_model, num_video_tokens  # noqa: E402
from hacalib.training.loss import batch_loss  # noqa: E402
from hacalib.training.pretrain import PRETRAIN_FILE, load_pretrain_records, pretrain_examples, pretraining_data  # noqa: E402


def evaluate_world(model, processor, world: Path) -> dict:
    """Toy MSRVTT-QA exact match by question word pair, toy VideoCon pairwise accuracy by type (and overall)."""
    from hacalib.data.layout import DataRoot
    from hacalib.report.tables import pairwise_per_item
    from hacalib.scoring import evaluate

    root = DataRoot(world)
    qa = evaluate.qa_answers(model, processor, root)
    qa_by = qa.groupby(qa.question.str.extract(r"^(\w+ \w+)")[0])["exact"].mean().round(3).to_dict()
    pairs = evaluate.videocon_pairs(model, processor, root, batch_size=16)
    win = pairwise_per_item(pairs)  # the figures' pairwise accuracy, ties wrong
    return {"qa_exact": qa_by, "pairwise": round(float(win.pairwise_acc.mean()), 3),
            "pairwise_by_type": win.groupby("misalignment").pairwise_acc.mean().round(3).to_dict()}


def finetune_and_evaluate(base: Path, world: Path, objective: str, out: Path, steps: int | None = None) -> dict:
    """The toy preset's fine-tuning (LoRA, seed 0; `steps` instead of its 200 if given) of `base` on the world's toy
    VideoCon, then `evaluate_world`."""
    from dataclasses import replace

    from hacalib.presets import preset
    from hacalib.toyworld import word_class
    from hacalib.training.finetune import finetune, load_finetuned
    from hacalib.training.masking import WordClassTagger

    toy = preset("toy")
    cfg = replace(toy.finetune, objective=objective, seed=0, max_steps=steps or toy.finetune.max_steps)
    adapter = finetune(base, world, cfg, toy.model, out,
                       tagger=WordClassTagger(word_class), progress=False)
    model, processor = load_finetuned(base, adapter, dtype="float32")
    return evaluate_world(model, processor, world)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--init", required=True, help="a saved toy model (e.g. a fresh_scenes.py order model)")
    ap.add_argument("--world", default="cache/toyworld/default-seed0")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kinds", default="where,first,second,when", help="fresh-scene question types (fresh_scenes.py)")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--events", default="1,3")
    ap.add_argument("--motion-weight", type=float, default=1.0, help="weight of the fresh-scene loss (0: mix only)")
    ap.add_argument("--held-out", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evaluate", action="store_true")
    ap.add_argument("--finetune-steps", type=int, default=None, help="fine-tuning steps (default: the preset's 200)")
    ap.add_argument("--finetune", default="", help="comma-separated objectives (entail, haca, haca_mask) to fine-tune "
                    "the result with, as the toy preset does (seed 0), each then evaluated like --evaluate")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    world = Path(args.world)
    kinds = args.kinds.split(",")
    scene_opts = scene_options(world, args.events, moves_only=False)  # the world's seven actions

    model, proc = load_model(args.init, dtype="float32")
    cfg = PretrainConfig()
    dataset, collate = pretraining_data(world, pretrain_examples(load_pretrain_records(world / PRETRAIN_FILE)),
                                        model, proc, cfg)
    nvt = num_video_tokens(proc, len(scene_opts["sampled"]))
    held_out = draw(np.random.default_rng(123), args.held_out, kinds=kinds, max_agents=args.agents, **scene_opts)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    warm = 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + np.cos(np.pi * (s - warm) / max(1, args.steps - warm))))
    rng, t0 = np.random.default_rng(0), time.time()
    model.train()
    for step in range(1, args.steps + 1):
        idx = rng.choice(len(dataset), size=min(cfg.batch_size, len(dataset)), replace=False)
        world_loss = batch_loss(model, collate([dataset[int(i)] for i in idx]))
        items = draw(rng, 32, kinds=kinds, max_agents=args.agents, **scene_opts)
        motion_loss = question_loss(model, proc, items, nvt)
        opt.zero_grad()
        (world_loss + args.motion_weight * motion_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        if step % 300 == 0 and step < args.steps:
            by = held_out_accuracy(model, proc, held_out, nvt, kinds, args.agents)
            print(f"step {step} world {world_loss.item():.3f} motion {motion_loss.item():.3f} held-out {by} "
                  f"{time.time() - t0:.0f}s", flush=True)
    by = held_out_accuracy(model, proc, held_out, nvt, kinds, args.agents)  # --steps 0: the --init model as it is
    print(f"step {args.steps} held-out {by} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    model.save_pretrained(args.out)
    proc.save_pretrained(args.out)
    result = {"step": args.steps, "held_out": by}
    if args.evaluate:
        result["world"] = evaluate_world(model, proc, world)
        print(result["world"], flush=True)
    for objective in filter(None, args.finetune.split(",")):
        result[objective] = finetune_and_evaluate(Path(args.out), world, objective, Path(f"{args.out}-{objective}"),
                                                  args.finetune_steps)
        print(objective, result[objective], flush=True)
    return result


if __name__ == "__main__":
    main()
