"""Perception readout (caption log-likelihood) of a toy model on a toy world's held-out data.

Not part of `hacalib`. For each held-out VideoCon misalignment type (`videocon_loglik`, split "test", the first
--videocon rows) and each VELOCITI test (--velociti items per test, drawn with a fixed seed): "value" = share of
pairs where log p(true caption | video) > log p(contrast caption | video); "control" = the same two captions on
another video (VideoCon: the next row's video; VELOCITI: the next drawn item of the same test with a different
video_id), i.e. what the text prior alone gives. Gate: value >= 0.75, value - control >= 0.15, control <= 0.65.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/perception/readout.py MODEL_DIR --world /tmp/perc/world7 \
        --out /tmp/perc/readout-NAME.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hacalib.data import load_velociti
from hacalib.data.layout import DataRoot
from hacalib.models import load_model
from hacalib.scoring.evaluate import videocon_loglik
from hacalib.scoring.loglik import caption_loglik
from hacalib.scoring.requests import ScoreRequest

GATE_VALUE, GATE_MARGIN, GATE_CONTROL = 0.75, 0.15, 0.65


def gate(value: float, control: float) -> bool:
    return value >= GATE_VALUE and value - control >= GATE_MARGIN and control <= GATE_CONTROL


def row(name: str, n: int, value: float, control: float) -> dict:
    return {"name": name, "n": n, "value": round(float(value), 3), "control": round(float(control), 3),
            "pass": bool(gate(value, control))}


def videocon_readout(model, proc, root: DataRoot, limit: int, cache: dict) -> list[dict]:
    df = videocon_loglik(model, proc, root, split="test", limit=limit, duplicates="drop", video_cache=cache)
    out = []
    for mis, g in df.groupby("misalignment"):
        out.append(row(f"videocon/{mis}", len(g), (g.ll_true > g.ll_false).mean(),
                       (g.ll_true_other > g.ll_false_other).mean()))
    return out


def velociti_readout(model, proc, root: DataRoot, per_test: int, cache: dict, seed: int = 0) -> list[dict]:
    items = load_velociti(root.velociti_dir, video_root=root.velociti_videos)
    rng = np.random.default_rng(seed)
    out = []
    for test in dict.fromkeys(it.test for it in items):
        pool = [it for it in items if it.test == test]
        pick = sorted(rng.choice(len(pool), size=min(per_test, len(pool)), replace=False).tolist())
        chosen = [pool[i] for i in pick]
        others = []
        for k, it in enumerate(chosen):  # the next chosen item (cyclic) whose video differs
            for j in range(1, len(chosen) + 1):
                o = chosen[(k + j) % len(chosen)]
                if o.video_id != it.video_id:
                    others.append(o)
                    break
        reqs = []
        for it, o in zip(chosen, others):
            reqs += [ScoreRequest(it.video_path, it.pos), ScoreRequest(it.video_path, it.neg),
                     ScoreRequest(o.video_path, it.pos), ScoreRequest(o.video_path, it.neg)]
        ll = caption_loglik(model, proc, reqs, video_cache=cache).reshape(-1, 4)
        out.append(row(f"velociti/{test}", len(ll), (ll[:, 0] > ll[:, 1]).mean(), (ll[:, 2] > ll[:, 3]).mean()))
    return out


def readout(model_dir: str, world: str, videocon: int = 700, velociti: int = 300) -> dict:
    t0 = time.time()
    model, proc = load_model(model_dir, dtype="float32")
    model.eval()
    root, cache = DataRoot(world), {}
    rows = videocon_readout(model, proc, root, videocon, cache) + velociti_readout(model, proc, root, velociti, cache)
    return {"model": str(model_dir), "world": str(world), "rows": rows, "passed": sum(r["pass"] for r in rows),
            "of": len(rows), "seconds": round(time.time() - t0, 1)}


def table(res: dict) -> str:
    lines = ["| item | n | value | control | gate |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['name']} | {r['n']} | {r['value']:.2f} | {r['control']:.2f} | "
                     f"{'pass' if r['pass'] else 'fail'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--world", default="/tmp/perc/world7")
    ap.add_argument("--videocon", type=int, default=700, help="first N held-out VideoCon test rows")
    ap.add_argument("--velociti", type=int, default=300, help="items per VELOCITI test (fixed seed 0)")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = readout(args.model, args.world, args.videocon, args.velociti)
    print(table(res))
    print(f"gate passed {res['passed']}/{res['of']}  ({res['seconds']} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
