"""What would longer toy pretraining buy? Pretrain one base model at several lengths and measure each.

    python experiments/pretrain_length/run.py [--cache-dir cache] [--seed 0] [--steps 2400,4800,9600]

Each length is its own run of the toy recipe (`hacalib.presets`' PretrainConfig with `steps` replaced; the cosine
schedule decays to 0 at each run's own end, so 9,600 steps is not 4,800 continued). The preset's own length uses
the shipped base model of that seed (the same recipe, installed by `Experiment.base_model`). Each model is measured
as notebook 02 and 03 measure a base model: the sanity report on held-out toy VideoCon videos
(`evaluate_toy_model`: pairwise accuracy, yes/no accuracy, exact captions) and VELOCITI ClassicVLE per test on the
toy world's full VELOCITI set. Writes `<cache>/pretrain_length/seed<S>.csv` and prints a markdown table.
A diagnostic for PROTOCOL.md ("Toy base models"), not part of `haca reproduce`.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from hacalib.experiment import Experiment
from hacalib.metrics.velociti import classic_vle
from hacalib.models import load_model
from hacalib.scoring.evaluate import evaluate_toy_model, velociti_items
from hacalib.training.pretrain import pretrain_toy_model


def measure(model_dir: Path, exp: Experiment) -> dict:
    report = evaluate_toy_model(model_dir, exp.root.path)
    model, processor = load_model(model_dir)
    items = velociti_items(model, processor, exp.root, batch_size=exp.config.score_batch)
    items["classic"] = classic_vle(items["p_pos"], items["p_neg"]) * 100
    per_test = items.groupby("test")["classic"].mean()
    return {"heldout_pairwise (%)": report["pairwise_accuracy"] * 100,
            "heldout_yes_no (%)": report["yes_no_accuracy"] * 100,
            "caption_exact (%)": report["caption_exact"] * 100,
            **{f"velociti {t} (%)": v for t, v in per_test.items()},
            "velociti mean of tests (%)": per_test.mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default="cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", default="2400,4800,9600")
    args = parser.parse_args()
    exp = Experiment(preset="toy", cache_dir=args.cache_dir, base_seeds=(args.seed,))
    recipe = replace(exp.config.pretrain, seed=args.seed)
    rows = []
    for steps in (int(s) for s in args.steps.split(",")):
        start = time.perf_counter()
        if steps == recipe.steps:
            model_dir = Path(exp.base_model(args.seed))  # the shipped base (or this machine's own, if none fits)
        else:
            model_dir = Path(args.cache_dir) / "pretrain_length" / f"seed{args.seed}-steps{steps}"
            pretrain_toy_model(exp.root.path, model_dir, replace(recipe, steps=steps), progress=False)
        trained = time.perf_counter() - start
        rows.append({"steps": steps, "pretrain seconds (this call)": round(trained), **measure(model_dir, exp)})
        print(f"[pretrain_length] {steps} steps done", flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.cache_dir) / "pretrain_length" / f"seed{args.seed}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.round(1).T.to_markdown())


if __name__ == "__main__":
    main()
