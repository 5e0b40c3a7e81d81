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
import sys
from dataclasses import replace

from ..config import OBJECTIVES, ConfigError, ModelConfig, TrainConfig, from_mapping
from ..errors import DataError, UsageError
from ..io import read_json
from ..orphans import exit_with_parent
from .finetune import finetune
from .masking import tagger_for


RUN_KEYS = ("data_root", "base_model", "out_dir", "train", "model", "duplicates", "missing_videos", "global_batch")


def _run_file(path: str) -> dict:
    """The run file, checked: a JSON object with known keys (a DataError or ConfigError names what is wrong)."""
    run = read_json(path)
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: must be a JSON object with keys {', '.join(RUN_KEYS)}, got {type(run).__name__}")
    unknown = sorted(set(run) - set(RUN_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown run file key(s) {unknown}; known: {', '.join(RUN_KEYS)}")
    return run


def main(argv: list[str] | None = None) -> int:
    """The command; a mistake in its input (config, data, folder) is one line on stderr and exit status 2."""
    try:
        return _main(argv)
    except (ConfigError, DataError, UsageError, OSError) as exc:
        where = f" ({exc.filename})" if isinstance(exc, OSError) and getattr(exc, "filename", None) else ""
        text = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        print(f"hacalib.training.cli: error: {text}{where}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
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
    run = _run_file(args.config) if args.config else {}
    cfg = from_mapping(TrainConfig, run.get("train", {}), f"{args.config}, train")
    overrides = {"objective": args.objective, "max_steps": args.max_steps, "seed": args.seed}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    data_root = args.data_root or run.get("data_root")
    base_model = args.base_model or run.get("base_model")
    out_dir = args.out_dir or run.get("out_dir")
    if not (data_root and base_model and out_dir):
        parser.error("--data-root, --base-model and --out-dir (or the run file's keys) are required")
    model = from_mapping(ModelConfig, run.get("model", {}), f"{args.config}, model")
    out = finetune(base_model, data_root, cfg, model, out_dir,
                   tagger=tagger_for(data_root), progress=not args.no_progress,
                   duplicates=args.duplicates or run.get("duplicates", "error"),
                   missing_videos=args.missing_videos or run.get("missing_videos", "error"),
                   global_batch=args.global_batch or bool(run.get("global_batch", False)))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
