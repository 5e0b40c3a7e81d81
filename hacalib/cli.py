"""The `haca` command. Each subcommand is a thin wrapper around a library function (imported lazily).

May import: `hacalib.errors`, `hacalib.report`, `hacalib.reproduce`, `hacalib.toyworld`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    cfg = ReproduceConfig(project_root=Path(args.project_root).resolve(), preset=args.preset,
                          data_root=args.data_root, seeds=_seeds(args.seeds), smoke=args.smoke,
                          only=args.only or ())
    reproduce(cfg)
    return 0


def cmd_toyworld(args: argparse.Namespace) -> int:
    from .toyworld import build_world

    manifest = build_world(args.out, size=args.size, seed=args.seed)
    print(json.dumps({k: manifest[k] for k in ("size", "seed", "counts", "generation_seconds") if k in manifest}))
    return 0


def cmd_score_retrieval(args: argparse.Namespace) -> int:
    from .report.retrieval_report import main as retrieval_main

    return retrieval_main(["--matrix", args.matrix, "--scores", args.scores])


def cmd_info(args: argparse.Namespace) -> int:
    from .report.provenance import provenance

    print(json.dumps(provenance(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haca", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run the notebooks through papermill (all tables and figures)")
    r.add_argument("--smoke", action="store_true", help="tiny data and steps; writes under runs/smoke/")
    r.add_argument("--only", action="append", help="run only this notebook (name or prefix, e.g. 03); repeatable")
    r.add_argument("--preset", default="toy", choices=["toy", "videollava-7b"], help="model + data preset")
    r.add_argument("--data-root", default="", help="folder with the real benchmark files (paper preset)")
    r.add_argument("--seeds", default="0,1,2", help="comma-separated fine-tuning seeds")
    r.add_argument("--project-root", default=".", help="the project checkout (default: current folder)")
    r.set_defaults(func=cmd_reproduce)

    t = sub.add_parser("toyworld", help="write the toy world in the real benchmark formats")
    t.add_argument("--out", required=True, help="output folder (a data_root)")
    t.add_argument("--size", default="default", choices=["smoke", "default"], help="world size preset")
    t.add_argument("--seed", type=int, default=0, help="world seed")
    t.set_defaults(func=cmd_toyworld)

    s = sub.add_parser("score-retrieval", help="mAP / R@k / ties of VideoCon-style retrieval scores")
    s.add_argument("--matrix", required=True, help="eval CSV: videopath,caption,match")
    s.add_argument("--scores", required=True, help="header-less scores CSV: videopath,caption,entailment,pos,neg")
    s.set_defaults(func=cmd_score_retrieval)

    i = sub.add_parser("info", help="print the provenance record of this environment")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # a clear one-line error for bad input; tracebacks for bugs
        from .errors import DataError

        if isinstance(exc, DataError):
            print(f"haca: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
