"""`python -m hacalib.shard_cli --spec launch.json`: one process of an evaluation shared by several, started by
`accelerate launch` from `hacalib.experiment.Experiment.per_item` (not a command for users).

Every process builds the experiment of the spec, takes its rank and device from accelerate (`PartialState`: gloo
on CPUs, NCCL on GPUs) and runs `per_item` as its share (`Experiment.as_shard`): it scores its share of the videos
into its own resumable file, waits for the others, reads every share back, and the first process writes the
per-item CSV. The spec (written by `Experiment._launch_evaluation`):
{"experiment": {Experiment fields}, "benchmark", "row", "seed", "mask_ratio", "base", "overrides"}.

It ends when its launcher does (`hacalib.orphans`).

May import: accelerate, torch, `hacalib.experiment`, `hacalib.io`, `hacalib.orphans`, `hacalib.scoring.shards`.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

# A process waits at the end of its share for the slowest one: at paper scale shares of MSRVTT-QA take hours and
# may end far apart, longer than NCCL's 10-minute default for a collective.
WAIT_LIMIT = timedelta(hours=48)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one process of a shared evaluation (started by accelerate launch)")
    parser.add_argument("--spec", required=True, help="the launch.json that Experiment.per_item wrote")
    args = parser.parse_args(argv)
    from .orphans import exit_with_parent

    exit_with_parent()

    import torch
    from accelerate import PartialState

    from .experiment import Experiment
    from .io import read_json
    from .scoring.shards import Shard

    spec = read_json(args.spec)
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT_LIMIT)
    shard = Shard(rank=state.process_index, count=state.num_processes, wait=state.wait_for_everyone)
    exp = Experiment(**{**spec["experiment"], "seeds": tuple(spec["experiment"]["seeds"]),
                        "base_seeds": tuple(spec["experiment"]["base_seeds"])}).as_shard(shard, state.device)
    exp.per_item(spec["benchmark"], spec["row"], spec["seed"], spec["mask_ratio"], base=spec["base"],
                 **spec["overrides"])
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
