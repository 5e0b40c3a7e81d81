"""Artifacts under figures/: tidy CSV + markdown tables and PNG + SVG figures, each with its provenance.

Every artifact `NAME` becomes `NAME.csv`/`NAME.md` (tables) or `NAME.png`/`NAME.svg` (figures) plus
`NAME.provenance.json`; all written atomically, so a killed run never leaves a half-written table behind.

May import: `hacalib.io`, `.readable`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..io import atomic_path, write_json, write_text
from .readable import readable


def _provenance_footer(prov: dict) -> str:
    pk = prov.get("packages", {})
    keys = ("torch", "transformers", "peft", "accelerate")
    versions = ", ".join(f"{k} {pk[k]}" for k in keys if k in pk)
    lines = [
        "",
        f"<sub>commit `{prov.get('git_commit')}` · prompt `{prov.get('prompt_version')}` · device {prov.get('device')}"
        f" · {versions} · {prov.get('created')} · full record in the `.provenance.json` beside this file</sub>",
    ]
    return "\n".join(lines) + "\n"


def write_table(df, name: str, out_dir: str | Path, prov: dict, *, title: str | None = None,
                digits: int = 1) -> dict[str, Path]:
    """Write `df` as NAME.csv (tidy, full precision) and NAME.md (`readable`: estimates with their CIs in one cell,
    `digits` decimals, integers as integers; with a provenance footer)."""
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / f"{name}.csv", "md": out_dir / f"{name}.md",
             "provenance": out_dir / f"{name}.provenance.json"}
    with atomic_path(paths["csv"]) as tmp:
        df.to_csv(tmp, index=False)
    md = (f"### {title}\n\n" if title else "") + readable(df, digits).to_markdown(index=False) + "\n"
    write_text(paths["md"], md + _provenance_footer(prov))
    write_json(paths["provenance"], prov)
    return paths


def write_markdown(text: str, name: str, out_dir: str | Path, prov: dict) -> dict[str, Path]:
    """Write a text artifact (e.g. a notebook's Findings) as NAME.md with a provenance footer."""
    out_dir = Path(out_dir)
    paths = {"md": out_dir / f"{name}.md", "provenance": out_dir / f"{name}.provenance.json"}
    write_text(paths["md"], text + _provenance_footer(prov))
    write_json(paths["provenance"], prov)
    return paths


def save_figure(fig, name: str, out_dir: str | Path, prov: dict, *, dpi: int = 150) -> dict[str, Path]:
    """Save a matplotlib figure as NAME.png and NAME.svg, with the commit in the SVG metadata."""
    out_dir = Path(out_dir)
    paths = {"png": out_dir / f"{name}.png", "svg": out_dir / f"{name}.svg",
             "provenance": out_dir / f"{name}.provenance.json"}
    meta = {"Description": json.dumps({k: prov.get(k) for k in ("git_commit", "prompt_version", "device")})}
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata=meta,
                    pil_kwargs={"optimize": True})
    with atomic_path(paths["svg"]) as tmp:
        fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Description": meta["Description"]})
    write_json(paths["provenance"], prov)
    return paths


def read_provenance(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
