"""`haca score-retrieval`: mAP, R@k and ties of a user's own text-to-video retrieval scores.

Reads VideoCon's SSv2 matrix (`videopath,caption,match`) and a header-less VideoCon-style scores file
(`videopath,caption,entailment,pos,neg`), both through `hacalib.data.ssv2`, and prints a human-readable
summary and one JSON line.
Primary numbers: mAP with ties grouped (scikit-learn) and R@k with ties resolved by expectation; VideoCon's
own `calc_ssv2.py` convention is printed beside them, labelled, with the tie counts that separate them.

May import: `hacalib.data`, `hacalib.errors`, `hacalib.io`, `hacalib.metrics`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from ..data.ssv2 import load_retrieval_matrix, load_retrieval_scores
from ..errors import DataError
from ..io import write_json
from ..metrics import METRICS, is_collapsed, pyes_spread, tie_summary, videocon_order

KS = (1, 5, 10)


def score_retrieval(matrix_csv: str | Path, scores_csv: str | Path, *, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Every retrieval number for one scores file against its matrix.

    Args:
        matrix_csv: VideoCon SSv2 eval CSV (`videopath,caption,match`), a full queries x videos matrix.
        scores_csv: header-less VideoCon scores, one row per matrix pair (`videopath,caption,entailment,pos,neg`);
            paired on (videopath, template) by `hacalib.data.ssv2`.
        n_resamples, seed: bootstrap over queries for the 95% intervals of mAP and R@k.
    Returns a flat dict of fractions in [0, 1]: map (+ map_ci_low/high), R@1/5/10 (+ CIs), map_videocon,
    R@k_videocon, map_ties_best / map_ties_worst, the `ties` counts, the P(yes) `spread` and `collapsed`.
    """
    matrix = load_retrieval_matrix(matrix_csv)
    scores = load_retrieval_scores(scores_csv, matrix)
    match = matrix.match
    out: dict = {"matrix": str(matrix_csv), "scores": str(scores_csv), "n_queries": len(matrix.queries),
                 "n_videos": len(matrix.videos), "positives": int(match.sum())}
    for name in ("map", *(f"R@{k}" for k in KS)):
        r = METRICS[name].with_ci(scores, match, n_resamples=n_resamples, seed=seed)
        out.update({name: r["value"], f"{name}_ci_low": r["ci_low"], f"{name}_ci_high": r["ci_high"]})
    # VideoCon's script ranks within columns sorted by videopath; its tie order depends on that order
    order = videocon_order(matrix.videos)  # the loader already sorts them; kept so the convention is explicit
    for name in ("map_videocon", *(f"R@{k}_videocon" for k in KS)):
        out[name] = METRICS[name](scores[:, order], match[:, order])
    out["map_ties_best"] = METRICS["map_ties_best"](scores, match)
    out["map_ties_worst"] = METRICS["map_ties_worst"](scores, match)
    out["ties"] = tie_summary(scores, match)
    out["spread"] = pyes_spread(scores)
    out["collapsed"] = is_collapsed(scores)
    return out


def conventions_table(r: dict, chance_map: float | None = None) -> "pd.DataFrame":
    """A `score_retrieval` result as one table of mAP under each tie convention (%, the grouped one with its 95%
    CI over queries), beside the expected mAP of a random ranking when `chance_map` is given."""
    import pandas as pd

    nan = float("nan")
    lines = [("ties grouped (scikit-learn; this project's number)", r["map"], r["map_ci_low"], r["map_ci_high"]),
             ("VideoCon's script (numpy argsort order)", r["map_videocon"], nan, nan),
             ("ties broken for the positives (best case)", r["map_ties_best"], nan, nan),
             ("ties broken against the positives (worst case)", r["map_ties_worst"], nan, nan)]
    if chance_map is not None:
        lines.append(("a random ranking (exact expectation)", chance_map, nan, nan))
    return pd.DataFrame(lines, columns=["mAP", "value", "ci_low", "ci_high"])


def conventions_reading(r: dict, chance_map: float) -> str:
    """One sentence on a `score_retrieval` result: the mAP, how far tie-breaking alone moves it, and chance."""
    t = r["ties"]
    return (f"mAP {100 * r['map']:.1f}% [{100 * r['map_ci_low']:.1f}, {100 * r['map_ci_high']:.1f}] with ties grouped "
            f"({100 * r['map_videocon']:.1f} by VideoCon's script); {t['positives_tied_with_negative']} of "
            f"{t['positives']} positives share their score with a negative, so the tie convention alone moves mAP "
            f"between {100 * r['map_ties_worst']:.1f} and {100 * r['map_ties_best']:.1f}; a random ranking of this "
            f"matrix gets {100 * chance_map:.1f}% on average.")


def format_report(r: dict) -> str:
    """Human-readable summary (percentages) of a `score_retrieval` result."""
    pct = lambda x: f"{100 * x:5.1f}"  # noqa: E731
    t = r["ties"]
    lines = [
        f"matrix  {r['matrix']}  ({r['n_queries']} queries x {r['n_videos']} videos, {r['positives']} positives)",
        f"scores  {r['scores']}",
        f"mAP (ties grouped, scikit-learn)  {pct(r['map'])}   "
        f"95% CI [{pct(r['map_ci_low'])}, {pct(r['map_ci_high'])}] over queries",
        "R@1 / R@5 / R@10 (ties by expectation)  " + " / ".join(pct(r[f"R@{k}"]) for k in KS),
        f"VideoCon convention (np.argsort, calc_ssv2.py)  mAP {pct(r['map_videocon'])}   R@1/5/10 "
        + " / ".join(pct(r[f"R@{k}_videocon"]) for k in KS),
        f"ties: {t['tied_groups']} tied score groups; "
        f"{t['positives_tied_with_negative']} of {t['positives']} positives "
        f"tie with a negative ({t['tied_positive_negative_pairs']} pairs); mAP ranges "
        f"{pct(r['map_ties_worst']).strip()} .. {pct(r['map_ties_best']).strip()} as ties break against / for positives",
        f"P(yes) spread: std {r['spread']['std']:.4f}, "
        f"range [{r['spread']['min']:.4f}, {r['spread']['max']:.4f}], "
        f"{r['spread']['n_unique']} distinct values",
    ]
    if r["collapsed"]:
        lines.append("COLLAPSED: the scores are constant; these numbers are not a result")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the summary and one JSON line; exit 2 with a one-line message on bad input."""
    p = argparse.ArgumentParser(prog="haca score-retrieval", description=__doc__.splitlines()[0])
    p.add_argument("--matrix", required=True, help="eval CSV: videopath,caption,match")
    p.add_argument("--scores", required=True, help="header-less scores CSV: videopath,caption,entailment,pos,neg")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed for the confidence intervals")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--json-out", default="", help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    try:
        result = score_retrieval(args.matrix, args.scores, n_resamples=args.resamples, seed=args.seed)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    print(json.dumps(result, sort_keys=True))
    if args.json_out:
        write_json(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def retrieval_matrices(frame: pd.DataFrame) -> dict[str, tuple]:
    """benchmark -> (scores, match, queries, videos) from `Experiment.per_item('ssv2', ...)`'s long frame."""
    out = {}
    for name, df in frame.groupby("benchmark", sort=False):
        scores = df.pivot(index="query", columns="video", values="p_yes")
        match = df.pivot(index="query", columns="video", values="match")
        queries = list(dict.fromkeys(df["query"]))
        videos = sorted(dict.fromkeys(df["video"]))
        out[name] = (scores.loc[queries, videos].to_numpy(), match.loc[queries, videos].to_numpy().astype(bool),
                     queries, videos)
    return out
