"""Does the tables' interval cover the truth at the preset's counts? A simulation on the measured spreads.

    python experiments/intervals/coverage.py [--cache-dir cache] [--reps 2000] [--designs 3x2,3x1,4x1,5x1,3x3]

Reads the toy reproduction's cached per-item VELOCITI results (ClassicVLE per pair; run `haca reproduce` first),
estimates four variance components per test with moment estimators:

    x[b, s, i] = mu + B_b + S_bs + I_i + E_bsi      base model, fine-tuning seed (within base), item, residual

and simulates new experiments from a Gaussian model with those spreads: for each design BxS (B base models, S
fine-tuning seeds each) and the test's number of items, how often the 95% interval covers mu and its median width:
- `nested`: `hacalib.metrics.nested_interval` (what every table uses);
- `seeds only`: the previous tables' interval: one base model, a t-interval over its fine-tuning seeds (3 seeds);
- `bases, no items`: a t over base-model means without the item term.
A diagnostic for PROTOCOL.md ("Intervals"), not part of `haca reproduce`.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import stats

from hacalib.experiment import Experiment
from hacalib.metrics import nested_interval, t_interval
from hacalib.report.tables import velociti_per_item


def components(x: np.ndarray) -> dict[str, float]:
    """Moment estimates of the SDs of B, S, I and E from x[b, s, i] (at least 2 bases, 2 seeds, 2 items)."""
    nb, ns, ni = x.shape
    run = x.mean(axis=2)  # (b, s)
    base = run.mean(axis=1)  # (b,)
    item = x.mean(axis=(0, 1))  # (i,)
    resid = x - run[:, :, None] - item[None, None, :] + x.mean()
    var_e = float((resid ** 2).sum() / ((nb * ns - 1) * (ni - 1)))
    var_s = max(float(run.var(axis=1, ddof=1).mean()) - var_e / ni, 0.0)
    var_b = max(float(base.var(ddof=1)) - var_s / ns - var_e / (ns * ni), 0.0)
    var_i = max(float(item.var(ddof=1)) - var_e / (nb * ns), 0.0)
    return {k: float(np.sqrt(v)) for k, v in (("base", var_b), ("seed", var_s), ("item", var_i), ("resid", var_e))}


def simulate(sd: dict[str, float], bases: int, seeds: int, items: int, reps: int, rng: np.random.Generator) -> dict:
    hits = {"nested": 0, "seeds only": 0, "bases, no items": 0}
    widths = {k: [] for k in hits}
    for _ in range(reps):
        b = rng.normal(0, sd["base"], bases)[:, None, None]
        s = rng.normal(0, sd["seed"], (bases, seeds))[:, :, None]
        i = rng.normal(0, sd["item"], items)[None, None, :]
        x = b + s + i + rng.normal(0, sd["resid"], (bases, seeds, items))  # mu = 0
        ci = nested_interval({(bb, ss): x[bb, ss] for bb in range(bases) for ss in range(seeds)})
        one_base = b[0, 0, 0] + rng.normal(0, sd["seed"], 3)[:, None] + i[0] + rng.normal(0, sd["resid"], (3, items))
        _, lo_s, hi_s = t_interval(one_base.mean(axis=1))
        _, lo_b, hi_b = t_interval(x.mean(axis=(1, 2)))
        for name, (lo, hi) in (("nested", (ci.low, ci.high)), ("seeds only", (lo_s, hi_s)),
                               ("bases, no items", (lo_b, hi_b))):
            hits[name] += lo <= 0 <= hi
            widths[name].append(hi - lo)
    return {k: {"coverage": hits[k] / reps, "median_width": float(np.median(widths[k]))} for k in hits}


def _of(frame, test: str) -> np.ndarray:
    return frame.loc[frame["test"] == test, "classic_vle"].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--designs", default="3x2,3x1,4x1,5x1,3x3", help="BxS: base models x fine-tuning seeds")
    ap.add_argument("--row", default="haca")
    args = ap.parse_args()
    exp = Experiment(preset="toy", cache_dir=args.cache_dir)
    runs = [(args.row, b, s) for b in exp.base_seeds for s in exp.seeds]
    items = {k: velociti_per_item(df) for k, df in exp.collect("velociti", runs).items()}
    designs = [tuple(int(x) for x in d.split("x")) for d in args.designs.split(",")]
    rng = np.random.default_rng(0)
    for test in dict.fromkeys(next(iter(items.values()))["test"]):
        x = np.stack([np.stack([_of(items[(args.row, b, s)], test)
                                for s in exp.seeds]) for b in exp.base_seeds])
        sd = components(x)
        line = {"test": test, "items": x.shape[2], "sd": {k: round(v, 4) for k, v in sd.items()}}
        for bases, seeds in designs:
            out = simulate(sd, bases, seeds, x.shape[2], args.reps, rng)
            line[f"{bases}x{seeds}"] = {k: [round(v["coverage"], 3), round(v["median_width"] * 100, 1)]
                                        for k, v in out.items()}
        print(json.dumps(line))


if __name__ == "__main__":
    main()
