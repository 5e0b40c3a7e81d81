"""The `haca` command. Each subcommand is a thin wrapper around a library function (imported lazily).

Every argument is checked before any work. A user's mistake (bad input data, an argument that cannot work, a
folder that cannot be written, a full disk) ends in one line on stderr naming what to change, exit status 2;
`--debug` shows the traceback instead. Ctrl-C ends with exit status 130.

May import: `hacalib.errors`, `hacalib.io`, `hacalib.presets`, `hacalib.report`, `hacalib.reproduce`, `hacalib.plan`,
`hacalib.experiment`,
`hacalib.training.bases`, `hacalib.toyworld`, `hacalib.models.videochat2.convert`, `hacalib.rehearsal`,
`hacalib.data.fetch`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .presets import PRESET_FAMILIES, PRESETS


def _families(text: str) -> list[str]:
    """'video_llava,videochat2' -> the list (checked against the preset when the command runs)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give comma-separated model families, e.g. video_llava,videochat2")
    return names


def _seeds(text: str) -> list[int]:
    """argparse type of --seeds: comma-separated non-negative integers, at least one, none repeated."""
    parts = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers such as 0,1,2, got {text!r}")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    return seeds


def _natural(text: str) -> int:
    """argparse type of a seed: a non-negative integer."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    """argparse type of a process count: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    cfg = ReproduceConfig(project_root=Path(args.project_root).resolve(), preset=args.preset,
                          data_root=args.data_root, seeds=args.seeds, base_seeds=args.base_seeds,
                          retrain_base=args.retrain_base, smoke=args.smoke, only=args.only or (),
                          num_processes=args.num_processes, accelerate_config=args.accelerate_config,
                          families=args.families, model_path=args.model_path)
    if args.plan:  # what would run, what is cached, how long: nothing is built
        from .plan import make_plan, render

        print(render(make_plan(cfg)))
        return 0
    from .io import command_lock
    from .reproduce import validate

    validate(cfg)  # refused in a second, before the lock makes the cache folder
    with command_lock(cfg.cache_dir / ".haca.lock", "haca reproduce"):  # one writer of the cache and notebooks
        reproduce(cfg)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pretrain the toy base models from the world (what `haca reproduce --retrain-base` uses); --ship commits them."""
    from .errors import UsageError
    from .io import command_lock

    if args.ship and args.smoke:
        raise UsageError("--ship writes the shipped (full-size) base models: drop --smoke or --ship")
    with command_lock(Path(args.cache_dir) / ".haca.lock", "haca pretrain"):  # not beside a reproduce on this cache
        return _pretrain(args)


def _pretrain(args: argparse.Namespace) -> int:
    from .experiment import Experiment
    from .io import read_json
    from .presets import family_slug
    from .report.provenance import provenance
    from .training.bases import ship_base

    exp = Experiment(preset="toy", cache_dir=args.cache_dir, smoke=args.smoke, base_seeds=tuple(args.base_seeds),
                     retrain_base=True, progress=not args.quiet, family=args.family)
    for seed in exp.base_seeds:
        path = Path(exp.base_model(seed))
        if args.ship:
            info = read_json(path / "pretrain.json")
            where = ship_base(path, seed, provenance({"pretrain": info["config"], "world_seed": exp.world_seed,
                                                      "smoke": exp.smoke}, notebook="haca pretrain"),
                              family=family_slug(exp.family))
            print(f"base model {seed}: {path} -> shipped as {where}")
        else:
            print(f"base model {seed}: {path}")
    return 0


def cmd_toyworld(args: argparse.Namespace) -> int:
    from .io import command_lock
    from .toyworld import build_world
    from .toyworld.build import check_out_dir

    out, _ = check_out_dir(args.out, force=args.force)  # a wrong --out is refused before the lock file is made
    with command_lock(out.parent / f".{out.name}.lock", "haca toyworld"):  # two builds of one world never mix
        manifest = build_world(args.out, size=args.size, seed=args.seed, force=args.force)
    print(json.dumps({k: manifest[k] for k in ("size", "seed", "counts", "generation_seconds") if k in manifest}))
    return 0


def cmd_score_retrieval(args: argparse.Namespace) -> int:
    from .report.retrieval_report import main as retrieval_main

    return retrieval_main(["--matrix", args.matrix, "--scores", args.scores])


def cmd_rehearse(args: argparse.Namespace) -> int:
    from .rehearsal import main as rehearsal_main

    return rehearsal_main(["--fixtures", args.fixtures, "--out", args.out])


def cmd_info(args: argparse.Namespace) -> int:
    from .report.provenance import provenance

    print(json.dumps(provenance(), indent=2))
    return 0


def cmd_convert_videochat2(args: argparse.Namespace) -> int:
    """The original VideoChat2 checkpoints -> a folder `load_model` reloads (the converter parses its own options)."""
    from .models.videochat2.convert import main as convert_main

    args.debug = "--debug" in args.argv
    return convert_main(args.argv)


def cmd_fetch_data(args: argparse.Namespace) -> int:
    """The real data from the hub (VideoCon, VELOCITI) and the user's folder (SSv2, MSRVTT-QA) into one data_root."""
    from .data.fetch import main as fetch_main

    args.debug = "--debug" in args.argv
    return fetch_main(args.argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haca", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")

    r = sub.add_parser("reproduce", parents=[common], help="run the notebooks through papermill (all tables and figures)")
    r.add_argument("--smoke", action="store_true", help="tiny data and steps; writes under runs/smoke/")
    r.add_argument("--only", action="append", help="run only this notebook (name or prefix, e.g. 03); repeatable")
    r.add_argument("--preset", default="toy", choices=list(PRESETS), help="model + data preset")
    r.add_argument("--families", default=None, type=_families,
                   help="comma-separated model families in every table (default: the preset's; toy: "
                        "video_llava,videochat2)")
    r.add_argument("--model-path", default="",
                   help="a paper preset's model folder instead of its hub model (videochat2-7b: required, the folder "
                        "`haca convert-videochat2` wrote)")
    r.add_argument("--data-root", default="", help="folder with the real benchmark files (paper preset)")
    r.add_argument("--seeds", default=None, type=_seeds,
                   help="comma-separated fine-tuning seeds on every base model (default: the preset's, toy 0,1); the "
                        "first is the run notebooks show in detail")
    r.add_argument("--base-seeds", default=None, type=_seeds,
                   help="comma-separated toy base models, i.e. pretraining seeds (default: the preset's, toy 0,1,2)")
    r.add_argument("--retrain-base", action="store_true",
                   help="toy: pretrain the base models from the world instead of using the shipped ones")
    r.add_argument("--plan", action="store_true",
                   help="print every training run and evaluation these settings would run, what is cached and an "
                        "estimate of the time left; run nothing")
    r.add_argument("--num-processes", default=1, type=_positive,
                   help="run each fine-tuning run and evaluation in N processes under accelerate launch (e.g. one per "
                        "GPU; gloo on a CPU); per-item results equal one process's (default 1: in the notebook kernel)")
    r.add_argument("--accelerate-config", default="",
                   help="an accelerate config file for those launches (FSDP, DeepSpeed, a GPU subset)")
    r.add_argument("--project-root", default=".", help="the project checkout (default: current folder)")
    r.set_defaults(func=cmd_reproduce)

    b = sub.add_parser("pretrain", parents=[common], help="rebuild the toy base models from the toy world")
    b.add_argument("--base-seeds", default=[0, 1, 2], type=_seeds, help="pretraining seeds (default 0,1,2)")
    b.add_argument("--family", default="video_llava", choices=list(PRESET_FAMILIES["toy"]),
                   help="which toy model (default video_llava)")
    b.add_argument("--cache-dir", default="cache", help="where the world and the retrained models go (default cache/)")
    b.add_argument("--smoke", action="store_true", help="the smoke world and recipe (seconds; for tests)")
    b.add_argument("--ship", action="store_true",
                   help="also write them into hacalib/bases/ as the shipped base models (commit them with git)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_pretrain)

    t = sub.add_parser("toyworld", parents=[common], help="write the toy world in the real benchmark formats")
    t.add_argument("--out", required=True, help="output folder (a data_root)")
    t.add_argument("--size", default="default", choices=["smoke", "default"], help="world size preset")
    t.add_argument("--seed", type=_natural, default=0, help="world seed (a non-negative integer)")
    t.add_argument("--force", action="store_true",
                   help="write into a folder that holds other files (files at world paths are overwritten; nothing "
                        "else is deleted), and rebuild even a complete world")
    t.set_defaults(func=cmd_toyworld)

    s = sub.add_parser("score-retrieval", parents=[common], help="mAP / R@k / ties of VideoCon-style retrieval scores")
    s.add_argument("--matrix", required=True, help="eval CSV: videopath,caption,match")
    s.add_argument("--scores", required=True, help="header-less scores CSV: videopath,caption,entailment,pos,neg")
    s.set_defaults(func=cmd_score_retrieval)

    h = sub.add_parser("rehearse", parents=[common],
                       help="build the paper preset's CPU rehearsal: a tiny Video-LLaVA-7B-hf with the real tokenizer, "
                            "a data root from real files; prints the reproduce command that runs it")
    h.add_argument("--fixtures", default="../shared/fixtures", help="folder with the real clip and Llama-2 tokenizer")
    h.add_argument("--out", default="runs/rehearsal", help="where the hub cache and data root are written")
    h.set_defaults(func=cmd_rehearse)

    v = sub.add_parser("convert-videochat2", add_help=False, prefix_chars="\0",
                       help="convert the original VideoChat2 checkpoints (see `haca convert-videochat2 --help`)")
    v.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    v.set_defaults(func=cmd_convert_videochat2, debug=False)

    f = sub.add_parser("fetch-data", add_help=False, prefix_chars="\0",
                       help="fetch VideoCon and VELOCITI from the hub at pinned commits, link SSv2 / MSRVTT-QA from a "
                            "folder, into one data_root with a manifest (see `haca fetch-data --help`)")
    f.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    f.set_defaults(func=cmd_fetch_data, debug=False)

    i = sub.add_parser("info", parents=[common], help="print the provenance record of this environment")
    i.set_defaults(func=cmd_info)
    return p


def _user_error(exc: BaseException) -> str | None:
    """The one line for an error the user can fix, or None for a bug (which keeps its traceback)."""
    from .config import ConfigError
    from .errors import DataError, UsageError

    if isinstance(exc, (DataError, UsageError, ConfigError)):
        return str(exc)
    if isinstance(exc, OSError):  # unwritable folder, full disk, missing file named by the user
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}"
    from .reproduce import NotebookFailed

    if isinstance(exc, NotebookFailed):  # its traceback is in the executed notebook the message names
        return str(exc)
    return None


def _closed_pipe() -> int:
    """The reader of our output went away (`haca info | head -1`): end quietly, as other command-line tools do.
    Python would report the failed flush of stdout at exit, so stdout is pointed at /dev/null first."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not in Python's exit
        return code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("haca: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:  # a clear one-line error for what the user can fix; tracebacks for bugs
        line = _user_error(exc)
        if line is None or args.debug:
            raise
        print(f"haca: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
