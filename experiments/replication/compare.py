"""Compare the paper-claim verdicts of two toy reproductions (issue 20's replication check).

    python experiments/replication/compare.py RUN_A/figures RUN_B/figures [--out compare.md]

Reads `0{2..7}_claims.csv` from both figure folders and writes, per claim: difference [CI] and verdict of each run,
whether the two intervals overlap, and whether the verdicts agree. Standalone: pandas only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def _claims(folder: Path) -> pd.DataFrame:
    frames = []
    for path in sorted(folder.glob("0*_claims.csv")):
        frame = pd.read_csv(path)
        frame.insert(0, "notebook", path.name[:2])
        frames.append(frame)
    if not frames:
        raise SystemExit(f"no 0*_claims.csv under {folder}")
    return pd.concat(frames, ignore_index=True)


def _cell(row: pd.Series, suffix: str) -> str:
    return (f"{row['difference' + suffix]:+.2f} [{row['ci_low' + suffix]:+.2f}, {row['ci_high' + suffix]:+.2f}] "
            f"{row['verdict' + suffix]} ({row['bases_agreeing' + suffix]})")


def compare(a: Path, b: Path) -> pd.DataFrame:
    keep = ["notebook", "claim", "difference", "ci_low", "ci_high", "verdict", "bases_agreeing"]
    both = _claims(a)[keep].merge(_claims(b)[keep], on=["notebook", "claim"], how="outer",
                                  suffixes=("_a", "_b"), indicator=True)
    missing = both[both["_merge"] != "both"]
    if len(missing):
        raise SystemExit(f"claims in only one run: {missing[['notebook', 'claim', '_merge']].to_dict('records')}")
    overlap = (both["ci_low_a"] <= both["ci_high_b"]) & (both["ci_low_b"] <= both["ci_high_a"])
    return pd.DataFrame({
        "notebook": both["notebook"], "claim": both["claim"],
        "run A": both.apply(_cell, axis=1, suffix="_a"), "run B": both.apply(_cell, axis=1, suffix="_b"),
        "intervals overlap": overlap.map({True: "yes", False: "NO"}),
        "same verdict": (both["verdict_a"] == both["verdict_b"]).map({True: "yes", False: "NO"}),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table = compare(args.a, args.b)
    text = table.to_markdown(index=False)
    summary = (f"\n\n{(table['intervals overlap'] == 'yes').sum()} of {len(table)} claims' intervals overlap; "
               f"{(table['same verdict'] == 'yes').sum()} of {len(table)} verdicts agree.\n")
    print(text + summary)
    if args.out:
        args.out.write_text(f"Run A: {args.a}\nRun B: {args.b}\n\n{text}{summary}")


if __name__ == "__main__":
    main()
