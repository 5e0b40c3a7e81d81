"""Side-by-side table of readout.py JSON files: value / control per item, **P** where the gate passes.

    .venv/bin/python experiments/perception/compare.py NAME=/tmp/perc/readout-a.json NAME2=/tmp/perc/readout-b.json
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    runs = [(a.split("=", 1)[0], json.load(open(a.split("=", 1)[1]))) for a in argv]
    items = [r["name"] for r in runs[0][1]["rows"]]
    print("| item | n | " + " | ".join(n for n, _ in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for it in items:
        rows = [next(x for x in res["rows"] if x["name"] == it) for _, res in runs]
        cells = [f"{r['value']:.2f} / {r['control']:.2f}{' **P**' if r['pass'] else ''}" for r in rows]
        print(f"| {it} | {rows[0]['n']} | " + " | ".join(cells) + " |")
    print("| gate passed | | " + " | ".join(f"{res['passed']}/{res['of']}" for _, res in runs) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
