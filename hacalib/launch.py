"""Running one of our `python -m` entry points in N processes under `accelerate launch`, and waiting for it.

    run_launched("hacalib.training.cli", ["--config", "run.json"], num_processes=2, log=Path("launch.log"))

What the notebooks' kernel uses to put every GPU of a node to work (`hacalib.experiment.Experiment` with
`num_processes` > 1): fine-tuning runs (`hacalib.training.cli`) and shared evaluations (`hacalib.shard_cli`) start
as `accelerate launch` of the same Python, which spawns the processes (torchrun underneath: NCCL on GPUs, gloo on
CPUs) and sets each one's rank and device. A user's accelerate config file (FSDP, DeepSpeed, a GPU subset) is
passed through as `--config_file`; without one the launch is plain multi-process DDP on this machine. The child
output goes to a log file; a failed launch raises with the log's path and the exceptions the processes raised.

A launch ends with the kernel that started it (`hacalib.orphans`): no orphaned run writes beside a rerun.

`launch_training` and `launch_evaluation` are the two launches `Experiment` makes.

May import: `hacalib.errors`, `hacalib.io`, `hacalib.orphans`, `hacalib.training` (the run's cache key); imported by
`hacalib.experiment`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from .errors import UsageError
from .io import write_json
from .orphans import ending_with_parent


class LaunchFailed(RuntimeError):
    """An `accelerate launch` ended with an error; the message names its log and what the processes raised."""


def check_launch_settings(num_processes: int, accelerate_config: str | Path = "") -> None:
    """Refuse a process count below 1, an accelerate config with one process (nothing is launched then) and an
    accelerate config file that is not there."""
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise UsageError(f"num_processes must be an integer >= 1, got {num_processes!r}")
    if accelerate_config and num_processes == 1:
        raise UsageError("an accelerate config is used by the launches of num_processes > 1; with 1 process the work "
                         "runs in this process (set num_processes to the config's process count)")
    if accelerate_config and not Path(accelerate_config).is_file():
        raise UsageError(f"accelerate config {str(accelerate_config)!r} is not a file (write one with "
                         "`accelerate config --config_file PATH`)")


def _free_port() -> int:
    # each launch its own rendezvous port: two launches at once (a test run, a second project) must not meet
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_command(module: str, args: Sequence[str], *, num_processes: int,
                       accelerate_config: str | Path = "") -> list[str]:
    """The `accelerate launch` command line that runs `python -m module args` in `num_processes` processes."""
    check_launch_settings(num_processes, accelerate_config)
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        cmd += ["--config_file", str(accelerate_config)]
    else:
        # --multi_gpu is accelerate's DDP launcher; on a machine without CUDA our processes ask for the CPU
        # (Accelerator/PartialState(cpu=True)), which makes it gloo (`--cpu` would need MPI)
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--num_processes", str(num_processes), "--main_process_port", str(_free_port()), "-m", module, *args]
    return cmd


def _child_env() -> dict:
    """This environment, with the folder this `hacalib` is imported from first on PYTHONPATH: the launched
    processes run the same library as the kernel that launches them (a checkout, not another installed copy)."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def run_launched(module: str, args: Sequence[str], *, num_processes: int, log: str | Path,
                 accelerate_config: str | Path = "", what: str = "") -> None:
    """Run `module` under `accelerate launch` in `num_processes` processes, its output appended to `log`; return when
    every process has ended, raise `LaunchFailed` (naming `what` and the log) if one failed."""
    cmd = accelerate_command(module, args, num_processes=num_processes, accelerate_config=accelerate_config)
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(ending_with_parent(cmd), env=_child_env(), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        raise LaunchFailed(f"{what or module} failed in {num_processes} processes under accelerate launch (exit "
                           f"status {proc.returncode}); its log is {log}. {_errors(lines)}")


_ERROR_LINE = re.compile(r"^(\[rank\d+\]:\s*)?(([\w.]+(Error|Exception|Failed|Interrupt)|SystemExit)\b|\S+: No module "
                         r"named ).*")


def _errors(lines: list[str]) -> str:
    """The exceptions the processes raised (each once), else the log's last lines: torchrun ends every failed launch
    with its own summary, which does not say what went wrong."""
    found = list(dict.fromkeys(m.group(0).split("]:", 1)[-1].strip() for line in lines
                               if (m := _ERROR_LINE.match(line)) and "ChildFailedError" not in line))
    if found:
        return "The processes raised:\n" + "\n".join(found[-5:])
    return "It ends:\n" + "\n".join(lines[-25:])


def launch_training(exp: Any, base_model: str | Path, train_cfg: Any, out: Path) -> None:
    """Train one run of experiment `exp` in `exp.num_processes` processes (`hacalib.training.cli`, the preset's step
    shared among them), unless it is finished already; the caller then loads it as it loads an in-process run."""
    from .training.runs import run_dir_for

    cfg = exp.config
    if exp.is_trained(train_cfg, base_model, out):
        return
    # beside the checkpoints: removed with them when the run is finished, kept (with the log) when it fails
    work = run_dir_for(out)
    spec = write_json(work / "launch.json", {
        "data_root": str(exp.root.path), "base_model": str(base_model), "out_dir": str(out),
        "train": asdict(train_cfg), "model": asdict(cfg.model), "duplicates": cfg.duplicates,
        "missing_videos": cfg.missing_videos, "global_batch": True})
    args = ["--config", str(spec)] + ([] if exp.progress else ["--no-progress"])
    run_launched("hacalib.training.cli", args, num_processes=exp.num_processes, log=work / "launch.log",
                 accelerate_config=exp.accelerate_config, what=f"fine-tuning run {out}")
    if not exp.is_trained(train_cfg, base_model, out):  # never fall back to training in the kernel
        raise LaunchFailed(f"the launched fine-tuning run ended without finishing {out}; see {work / 'launch.log'}")


def launch_evaluation(exp: Any, benchmark: str, row: str, seed: int, mask_ratio: float | None, base: int | None,
                      overrides: dict, path: Path, progress: Path) -> None:
    """Evaluate one run of experiment `exp` on one benchmark in `exp.num_processes` processes (`hacalib.shard_cli`),
    each writing its share into `progress`; the first writes the per-item CSV `path`."""
    # what every process reads must exist before they start (none of them trains, pretrains or builds a world)
    exp.run_dir(row, seed, mask_ratio, base=base, **overrides)
    exp.base_model(base)
    spec = write_json(progress / "launch.json", {
        "experiment": exp.launch_fields(), "benchmark": benchmark, "row": row, "seed": seed,
        "mask_ratio": mask_ratio, "base": base, "overrides": overrides})
    run_launched("hacalib.shard_cli", ["--spec", str(spec)], num_processes=exp.num_processes,
                 log=progress / "launch.log", accelerate_config=exp.accelerate_config,
                 what=f"{benchmark} evaluation of {row} base {base if base is not None else exp.base_seeds[0]} "
                      f"seed {seed}")
    if not path.is_file():
        raise LaunchFailed(f"the launched {benchmark} evaluation ended without writing {path}; see "
                           f"{progress / 'launch.log'}")
