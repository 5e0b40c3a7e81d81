"""Published numbers, each with its source, to set beside our pretrained row ("reported by ...").

`REPORTED` holds what the published record says about the benchmarks notebooks 03 (VELOCITI) and 04 (SSv2) measure:
a value with the place it was read, or, where the number exists in a paper table that could not be read from here,
no value and a note saying so (never a guess). `beside_pretrained` puts them beside the pretrained row of a summary
table and says, per line, whether the two are comparable: only the paper preset's real Video-LLaVA-7B can be
compared with a published Video-LLaVA-7B number, and only when it was scored with the same question (`prompt`, an
option of `hacalib.prompts.ENTAIL_PROMPTS`); the toy model never is.

Values are percentages as published. Where a source gives the number in its text, `value` is it; where we computed
it from files a source published, `note` says so.

May import: pandas, `hacalib.prompts`, `.tables`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import pandas as pd

from ..prompts import DEFAULT_ENTAIL_PROMPT, ENTAIL_PROMPTS
from .tables import format_cell

PAPER_MODEL = "Video-LLaVA-7B"  # the paper preset's base model (LanguageBind/Video-LLaVA-7B-hf)

VELOCITI_V2 = "VELOCITI (arXiv 2406.10889v2, CVPR 2025), abstract: https://arxiv.org/html/2406.10889v2"
VIDEOCON_REPO = ("VideoCon repository Hritikbansal/videocon@9a69520, datasets/eval_ssv2_temporal_scores.csv "
                 "(shipped as hacalib/samples)")
NOT_READ = "the paper's result tables could not be read from this environment (only abstracts); fill in from "


@dataclass(frozen=True)
class Reported:
    """One published number (or a known gap) for one benchmark cell.

    Attributes:
        benchmark: "velociti" or "ssv2".
        group: a VELOCITI test, an SSv2 matrix ("temporal", "events") or "all" (the source's average over tests).
        metric: our metric name (`classic_vle`, `strict_vle`, `map`, `map_videocon`).
        model: the model as the source names it.
        value: percent as published; None where the number was not found here (`note` says where to look).
        source: paper or repository, and where in it.
        prompt: the `ENTAIL_PROMPTS` option that asks the source's question ("" when none of ours does).
        note: how the number was made, and anything that limits a comparison.
    """

    benchmark: str
    group: str
    metric: str
    model: str
    value: float | None
    source: str
    prompt: str
    note: str


REPORTED: tuple[Reported, ...] = (
    # VELOCITI: the per-test Video-LLaVA numbers are in the paper's tables, not in any text we could read.
    Reported("velociti", "all", "classic_vle", PAPER_MODEL, None, "VELOCITI (arXiv 2406.10889v1 and v2), result tables",
             "velociti_v1", NOT_READ + "the Video-LLaVA row of the paper (v1: accuracy per test with the "
             "velociti_v1 question; v2/CVPR: ClassicVLE and StrictVLE)"),
    Reported("velociti", "all", "strict_vle", PAPER_MODEL, None, "VELOCITI (arXiv 2406.10889v2), result tables", "",
             NOT_READ + "the Video-LLaVA row. v2 asks its question through the model's chat template "
             "(katha-ai/VELOCITI@8d66ddb vidllm_eval.py), which no option here reproduces (that template "
             "cannot be read here)"),
    Reported("velociti", "all", "strict_vle", "LLaVA-OneVision", 44.5, VELOCITI_V2, "",
             "the best open model in the abstract; another model, for scale only"),
    Reported("velociti", "all", "strict_vle", "Gemini-1.5-Pro", 49.3, VELOCITI_V2, "",
             "the best closed model in the abstract; another model, for scale only"),
    Reported("velociti", "all", "strict_vle", "human", 93.0, VELOCITI_V2, "", "human accuracy in the abstract"),
    # SSv2: the HACA paper's pretrained Video-LLaVA row and VideoCon's baselines are in tables not read here.
    # the HACA paper's question is our default (PROTOCOL.md, "Prompts, targets and masking"; not checked against the paper's own text)
    Reported("ssv2", "temporal", "map", PAPER_MODEL, None, "HACA (arXiv 2502.15079), SSv2 retrieval table", "haca",
             NOT_READ + "its pretrained Video-LLaVA row"),
    Reported("ssv2", "events", "map", PAPER_MODEL, None, "HACA (arXiv 2502.15079), SSv2 retrieval table", "haca",
             NOT_READ + "its pretrained Video-LLaVA row"),
    Reported("ssv2", "temporal", "map", "mPLUG-Owl-Video / Owl-Con", None,
             "VideoCon (arXiv 2311.10111, CVPR 2024), SSv2 retrieval table", "videocon",
             NOT_READ + "the mPLUG-Owl-Video and Owl-Con rows (another model, for scale only)"),
    Reported("ssv2", "temporal", "map_videocon", "VideoCon's published scores (Owl-Con per its README)", 15.5,
             VIDEOCON_REPO, "videocon",
             "computed here (notebook 04) from the published per-pair scores with VideoCon's calc_ssv2.py "
             "convention (15.507 with numpy's default sort, 15.5006 stable; bf16 ties, PROTOCOL 'Metrics'); "
             "the README's example command scores Owl-Con; another model, for scale only"),
)


def reported(benchmark: str) -> pd.DataFrame:
    """The published numbers (and known gaps) of one benchmark, one line each, columns as `Reported`'s fields."""
    rows = [asdict(r) for r in REPORTED if r.benchmark == benchmark]
    if not rows:
        known = sorted({r.benchmark for r in REPORTED})
        raise ValueError(f"no published numbers for benchmark {benchmark!r}; known: {', '.join(known)}")
    return pd.DataFrame(rows, columns=[f.name for f in fields(Reported)])


def _comparable(r: pd.Series, ours: float | None, preset: str, prompt: str) -> str:
    """'yes' or 'no: <why>' for one published number beside our pretrained value."""
    if preset == "toy":
        return "no: the toy model (published numbers are for the real models)"
    if r["model"] != PAPER_MODEL:
        return "no: another model (for scale)"
    if r["value"] is None or pd.isna(r["value"]):
        return "no: number not found here"
    if ours is None:
        return "no: we do not measure this cell"
    if r["prompt"] != prompt:
        return f"no: our row used prompt {prompt!r}, the source {r['prompt'] or 'a question we do not have'!r}"
    return "yes"


def beside_pretrained(summary: pd.DataFrame, benchmark: str, group: str, *, preset: str,
                      prompt: str = DEFAULT_ENTAIL_PROMPT) -> pd.DataFrame:
    """Every published number of `benchmark` beside our pretrained row's value in the same cell.

    Args:
        summary: a `tables.summarize_runs` table (columns row, `group`, metric, value, ci_low, ci_high).
        benchmark: "velociti" or "ssv2" (`REPORTED`).
        group: the summary's grouping column ("test" for VELOCITI, "benchmark" for SSv2).
        preset: the notebook's preset ("toy": shown, never compared).
        prompt: the entailment option our row was scored with (`Experiment.prompt`).

    Returns one line per published number: cell, metric, ours (pretrained, %, mean [95% CI]; "" where we have no such
    cell), reported (%, or "not found here"), model, reported_by, prompt, comparable ("yes" / "no: why"), note.
    """
    if prompt not in ENTAIL_PROMPTS:
        raise ValueError(f"unknown entailment prompt {prompt!r}; choose one of {sorted(ENTAIL_PROMPTS)}")
    if "family" in summary.columns:
        # every published number here is a Video-LLaVA-style model's: our Video-LLaVA row stands beside them (none
        # when the study has no Video-LLaVA)
        summary = summary[summary["family"] == "video_llava"]
    mine = summary[summary["row"] == "pretrained"].set_index([group, "metric"])
    lines = []
    for _, r in reported(benchmark).iterrows():
        key = (r["group"], r["metric"])
        ours = mine.loc[key] if key in mine.index else None
        value = None if ours is None else float(ours["value"])
        lines.append({
            "cell": r["group"], "metric": r["metric"],
            "ours": "" if ours is None else format_cell(ours["value"], ours["ci_low"], ours["ci_high"]),
            "reported": "not found here" if r["value"] is None or pd.isna(r["value"]) else f"{r['value']:.1f}",
            "model": r["model"], "reported_by": r["source"], "prompt": r["prompt"] or "-",
            "comparable": _comparable(r, value, preset, prompt), "note": r["note"],
        })
    return pd.DataFrame(lines)


def reported_reading(table: pd.DataFrame, preset: str) -> str:
    """One sentence on a `beside_pretrained` table: what was compared, and why the rest was not."""
    found = int((table["reported"] != "not found here").sum())
    compared = int((table["comparable"] == "yes").sum())
    if preset == "toy":
        lead = ("The published numbers below are for the real models (Video-LLaVA-7B and others); this is the toy "
                "model, so they are shown for the scale of the benchmark and not compared.")
    else:
        lead = f"{compared} published number(s) can be compared with our pretrained row."
    empty = sorted(set(table.loc[table["ours"] == "", "cell"]))
    blank = (f" 'ours' is empty for cell(s) {', '.join(empty)}: our table has no such cell (a published average over "
             "tests, or another benchmark's name), and we do not make one up." if empty else "")
    return (f"{lead} {found} of {len(table)} lines carry a published value; the others name the table where the "
            f"number is, which could not be read from this environment.{blank}")
