"""How many base models would every claim's 95% interval need to be narrow enough? (issue 26, "Enough power")

    python experiments/intervals/power.py [--cache-dir cache] [--families video_llava,videochat2] [--out power.csv]

Reads the cached per-item results of a toy reproduction (run `haca reproduce` first) and, for each claim the tables
test (notebooks 03, 04, 05), splits today's interval (`hacalib.metrics.nested_interval`) into its two components:
the spread of base-model means (se_runs^2 = var_b / n_b, the fine-tuning seeds averaged inside each base model) and
the spread of item means (se_items^2 = var_i / n_items). It then projects the half-width for B base models with the
same seeds per base and the same items: se_runs^2 scaled by n_b / B, se_items^2 kept (conservative: more runs per
item also average the item means), t quantile from Welch-Satterthwaite as the tables compute it. The bounds asked
for are 3 points (VELOCITI ClassicVLE, QA) and 1.5 mAP (SSv2). A diagnostic, not part of `haca reproduce`.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from hacalib.metrics import nested_interval
from hacalib.report.retrieval_report import retrieval_matrices
from hacalib.report.claims import run_differences
from hacalib.report.tables import retrieval_per_query, velociti_per_item
from hacalib.study import Study

# (notebook, label, row A, row B, group column, group value, metric, bound in points)
CLAIMS = [
    *[("03", f"{a} > entail on {t}", a, "entail", "test", t, "classic_vle", 3.0)
      for a in ("haca", "haca_mask") for t in ("agent_bind", "action_bind")],
    ("03", "pretrained > haca on coref", "pretrained", "haca", "test", "coref", "classic_vle", 3.0),
    *[("04", f"{a} > entail, mAP", a, "entail", "benchmark", "toy", "map", 1.5) for a in ("haca", "haca_mask")],
    *[("05", f"{label} (QA, {judge})", a, b, "all", "all", judge, 3.0) for judge in ("contains", "exact")
      for label, a, b in (("pretrained > entail", "pretrained", "entail"), ("haca > entail", "haca", "entail"),
                          ("haca - pretrained", "haca", "pretrained"))],
]


def per_item(study: Study, notebook: str) -> dict:
    if notebook == "03":
        return {k: velociti_per_item(df) for k, df in study.collect("velociti").items()}
    if notebook == "04":
        return {k: pd.concat([retrieval_per_query(scores, match, name)
                              for name, (scores, match, _, _) in retrieval_matrices(df).items()], ignore_index=True)
                for k, df in study.collect("ssv2").items()}
    return {k: df.assign(all="all") for k, df in study.collect("qa").items()}


def projected_half(var_runs: float, n_top: int, var_items: float, n_items: int, bases: int) -> float:
    """95% half-width with `bases` base models: the base term scaled from `n_top` base models, the item term kept."""
    runs = var_runs * n_top / bases
    total = runs + var_items
    df = total ** 2 / (runs ** 2 / (bases - 1) + (var_items ** 2 / (n_items - 1) if n_items > 1 else 0.0))
    return float(stats.t.ppf(0.975, df) * np.sqrt(total))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--families", default="video_llava,videochat2")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    study = Study.of(preset="toy", families=args.families.split(","), cache_dir=args.cache_dir)
    frames = {nb: per_item(study, nb) for nb in dict.fromkeys(c[0] for c in CLAIMS)}
    lines = []
    for family in study.families:
        for nb, label, a, b, group, value, metric, bound in CLAIMS:
            runs = {k[1:]: v for k, v in frames[nb].items() if k[0] == family}
            diffs = run_differences(runs, a, b, group, value, metric)
            ci = nested_interval(diffs)
            n_top = len({base for base, _ in diffs})
            n_items = len(next(iter(diffs.values())))
            var_runs, var_items = ci.se_runs ** 2, ci.se_items ** 2
            line = {"family": family, "claim": label, "bound": bound, "difference": 100 * ci.value,
                    "half_width": 100 * (ci.high - ci.low) / 2, "se_bases": 100 * ci.se_runs,
                    "se_items": 100 * ci.se_items, "items": n_items, "bases": n_top}
            for bases in (3, 5, 8, 12, 20):
                line[f"half@{bases}"] = 100 * projected_half(var_runs, n_top, var_items, n_items, bases)
            enough = [bb for bb in range(3, 101) if 100 * projected_half(var_runs, n_top, var_items, n_items, bb)
                      <= bound]
            items_alone = 100 * stats.norm.ppf(0.975) * ci.se_items > bound
            line["bases_needed"] = enough[0] if enough else (
                "none: the item term alone exceeds the bound (more items)" if items_alone else "> 100")
            lines.append(line)
    table = pd.DataFrame(lines)
    pd.set_option("display.width", 250)
    print(table.round(2).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
