"""Published numbers beside the pretrained row (issue 18 item 6): every line names its source, a gap is said, and
only the paper preset's Video-LLaVA-7B scored with the source's question is ever compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hacalib import prompts
from hacalib.data.velociti import TESTS
from hacalib.report import reported as rep

GROUPS = {"velociti": set(TESTS) | {"all"}, "ssv2": {"temporal", "events"}}
METRICS = {"velociti": {"classic_vle", "strict_vle"}, "ssv2": {"map", "map_videocon", "R@1", "R@5", "R@10"}}


@pytest.mark.parametrize("r", rep.REPORTED, ids=lambda r: f"{r.benchmark}-{r.group}-{r.metric}-{r.model}")
def test_every_line_names_its_source_and_says_what_it_is(r):
    assert r.benchmark in GROUPS and r.group in GROUPS[r.benchmark] and r.metric in METRICS[r.benchmark]
    assert r.model.strip() and r.source.strip() and r.note.strip()
    assert r.prompt == "" or r.prompt in prompts.ENTAIL_PROMPTS
    if r.value is None:  # a gap says where the number is and why it is not here
        assert r.note.startswith(rep.NOT_READ)
    else:
        assert 0.0 <= r.value <= 100.0
        assert "arxiv.org" in r.source or "@" in r.source  # a page address or a repository at a commit


def test_table_columns_and_unknown_benchmark():
    table = rep.reported("velociti")
    assert list(table.columns) == ["benchmark", "group", "metric", "model", "value", "source", "prompt", "note"]
    assert set(table["benchmark"]) == {"velociti"}
    with pytest.raises(ValueError, match="no published numbers for benchmark 'qa'"):
        rep.reported("qa")


def _summary(group: str, cells: dict) -> pd.DataFrame:
    rows = []
    for (g, metric), value in cells.items():
        for row in ("pretrained", "haca"):
            rows.append({"row": row, group: g, "metric": metric, "value": value, "ci_low": value - 0.02,
                         "ci_high": value + 0.02})
    return pd.DataFrame(rows)


def test_toy_preset_shows_every_number_and_compares_none():
    summary = _summary("benchmark", {("temporal", "map"): 0.12, ("temporal", "map_videocon"): 0.13})
    table = rep.beside_pretrained(summary, "ssv2", "benchmark", preset="toy")
    assert len(table) == len(rep.reported("ssv2"))
    assert table["comparable"].str.startswith("no: the toy model").all()
    assert table.loc[table["metric"] == "map_videocon", "ours"].tolist() == ["13.0 [11.0, 15.0]"]
    assert "not compared" in rep.reported_reading(table, "toy")


def test_paper_preset_compares_only_the_same_model_and_question(monkeypatch):
    found = rep.Reported("velociti", "agent_bind", "classic_vle", rep.PAPER_MODEL, 55.0, "a paper @ table 1",
                         "velociti_v1", "test line")
    monkeypatch.setattr(rep, "REPORTED", rep.REPORTED + (found,))
    summary = _summary("test", {("agent_bind", "classic_vle"): 0.5, ("agent_bind", "strict_vle"): 0.1})
    table = rep.beside_pretrained(summary, "velociti", "test", preset="videollava-7b", prompt="velociti_v1")
    line = table[(table["cell"] == "agent_bind")].iloc[0]
    assert (line["ours"], line["reported"], line["comparable"]) == ("50.0 [48.0, 52.0]", "55.0", "yes")
    other = rep.beside_pretrained(summary, "velociti", "test", preset="videollava-7b")  # scored with 'haca'
    assert other[other["cell"] == "agent_bind"]["comparable"].iloc[0].startswith("no: our row used prompt 'haca'")
    reasons = dict(zip(table["model"], table["comparable"]))
    assert reasons["human"] == "no: another model (for scale)"
    gaps = table[(table["model"] == rep.PAPER_MODEL) & (table["reported"] == "not found here")]
    assert len(gaps) and gaps["comparable"].str.startswith("no: number not found here").all()
    assert "1 published number(s) can be compared" in rep.reported_reading(table, "videollava-7b")
    with pytest.raises(ValueError, match="unknown entailment prompt"):
        rep.beside_pretrained(summary, "velociti", "test", preset="videollava-7b", prompt="nope")


def test_a_missing_cell_of_ours_is_blank_not_a_number():
    table = rep.beside_pretrained(_summary("test", {}).reindex(columns=["row", "test", "metric", "value", "ci_low",
                                                                        "ci_high"]),
                                  "velociti", "test", preset="videollava-7b")
    assert (table["ours"] == "").all() and not table["reported"].isna().any()
    assert np.all(table["cell"] == "all")
