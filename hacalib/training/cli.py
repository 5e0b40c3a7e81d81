"""`python -m hacalib.training.cli`: LoRA fine-tuning from the command line, in one process or under
`accelerate launch` / `torchrun` (DDP; every process runs it).

    python -m hacalib.training.cli --config run.json [--data-root DIR] [--base-model PATH] [overrides]

run.json: {"data_root": ..., "base_model": ..., "out_dir": ..., "train": {TrainConfig fields},
"model": {ModelConfig fields}, "duplicates": "error" | "drop" | "keep", "missing_videos": "error" | "skip",
"global_batch": false | true}. With `global_batch` (or --global-batch) the train config's batch_size x grad_accum is
the whole optimizer step, shared among the processes (`hacalib.training.finetune.split_step`); by default batch_size
is per process.

Under a launcher, the process ends when its launcher does (`hacalib.orphans`): an orphan must not go on writing
checkpoints beside a rerun.

May import: `hacalib.config`, `hacalib.io`, `hacalib.orphans`, `.finetune`, `.masking`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from ..config import OBJECTIVES, ModelConfig, TrainConfig
from ..io import read_json
from ..orphans import exit_with_parent
from .finetune import finetune
from .masking import tagger_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LoRA fine-tuning of a Video-LLM on VideoCon-format data")
    parser.add_argument("--config", help="JSON run file (see the module docstring)")
    parser.add_argument("--data-root")
    parser.add_argument("--base-model")
    parser.add_argument("--out-dir")
    parser.add_argument("--objective", choices=list(OBJECTIVES))
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--duplicates", choices=["error", "drop", "keep"],
                        help="rows of the VideoCon CSV repeated exactly (default: the run file's, else error)")
    parser.add_argument("--missing-videos", choices=["error", "skip"],
                        help="training rows whose video is absent (default: the run file's, else error)")
    parser.add_argument("--global-batch", action="store_true",
                        help="batch_size x grad_accum is the whole step, shared among the processes (default: the "
                             "run file's, else batch_size is per process)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if "LOCAL_RANK" in os.environ:  # started by accelerate launch / torchrun
        exit_with_parent()
    run = read_json(args.config) if args.config else {}
    cfg = TrainConfig(**run.get("train", {}))
    overrides = {"objective": args.objective, "max_steps": args.max_steps, "seed": args.seed}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    data_root = args.data_root or run.get("data_root")
    base_model = args.base_model or run.get("base_model")
    out_dir = args.out_dir or run.get("out_dir")
    if not (data_root and base_model and out_dir):
        parser.error("--data-root, --base-model and --out-dir (or the run file's keys) are required")
    out = finetune(base_model, data_root, cfg, ModelConfig(**run.get("model", {})), out_dir,
                   tagger=tagger_for(data_root), progress=not args.no_progress,
                   duplicates=args.duplicates or run.get("duplicates", "error"),
                   missing_videos=args.missing_videos or run.get("missing_videos", "error"),
                   global_batch=args.global_batch or bool(run.get("global_batch", False)))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
