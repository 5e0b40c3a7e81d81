"""Determinism (same seed and config -> the same world, model and tables on CPU) and safe loading (safetensors only,
`torch.load` only with `weights_only=True`, no `trust_remote_code`, no secrets in provenance).
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hacalib.experiment import Experiment
from hacalib.report.tables import summarize_runs, velociti_per_item

PACKAGE = Path(__file__).resolve().parents[1] / "hacalib"


pytestmark = pytest.mark.usefixtures("one_thread")


class Interrupt(BaseException):
    """What a kill does to the scoring loop, raised in-process (a real SIGKILL: tests/test_reliability_runs.py)."""


def _interrupted_then_resumed(exp: Experiment, monkeypatch, after: int):
    """Score SSv2 retrieval for the haca row, interrupted after decoding `after` videos, then again; returns the
    second call's per-item frame, the videos finished before the interruption and those the second call decoded."""
    import hacalib.scoring.pyes as score

    original = score.VideoLoader.__call__
    decoded: list[str] = []
    interrupt = [True]

    def counting(self, request):
        if request.key() not in self.cache:
            if interrupt[0] and len(decoded) == after:
                raise Interrupt()
            decoded.append(request.key())
        return original(self, request)

    monkeypatch.setattr(score.VideoLoader, "__call__", counting)
    exp.finetuned("haca", 0)  # trained outside the interrupted part
    with pytest.raises(Interrupt):
        exp.per_item("ssv2", "haca", 0)
    progress = next((exp.finetuned("haca", 0) / "eval").glob(".ssv2-*.scores")) / "ssv2_toy.csv"
    kept = {line.split(",")[1] for line in progress.read_text().splitlines()[1:]}
    decoded.clear()
    interrupt[0] = False
    items = exp.per_item("ssv2", "haca", 0)
    monkeypatch.setattr(score.VideoLoader, "__call__", original)
    return items, kept, decoded


def _smoke_experiment(cache: Path, monkeypatch=None) -> dict:
    """Everything the smoke preset produces for one row, from an empty cache: world, base model, run, table.
    With `monkeypatch`, the SSv2 scoring is interrupted halfway and resumed."""
    exp = Experiment(preset="toy", cache_dir=str(cache), seeds=(0,), smoke=True)
    if monkeypatch is None:
        ssv2 = exp.per_item("ssv2", "haca", 0)
    else:
        # videos not kept across calls: the decodes counted show which videos the resumed call scores
        import hacalib.experiment as experiment

        preset = experiment.get_preset
        monkeypatch.setattr(experiment, "get_preset", lambda name, smoke, family=None: replace(
            preset(name, smoke=smoke, family=family), keep_videos=False))
        assert exp.video_store is None
        # a forward scores `score_batch` (8) videos: interrupted in the second one, the first 8 are kept
        ssv2, kept, decoded = _interrupted_then_resumed(exp, monkeypatch, after=12)
        assert len(kept) == 8 and not kept & set(decoded)  # finished videos are not scored again
        assert len(kept) + len(decoded) == ssv2["video"].nunique() == 27
        left = [p.name for p in (exp.finetuned("haca", 0) / "eval").glob(".*") if not p.name.startswith(".check.")]
        assert not left  # the progress file is gone once done (each results file keeps only its record)
    items = exp.per_item("velociti", "haca", 0)
    run = exp.finetuned("haca", 0)
    eval_csv = next((run / "eval").glob("velociti-*.csv"))
    ssv2_csv = next((run / "eval").glob("ssv2-*.csv"))
    table = summarize_runs({("haca", 0): velociti_per_item(items)}, "test", ["classic_vle", "strict_vle"])
    return {"exp": exp, "world": exp.root.path, "base": Path(exp.base_model()), "run": run, "eval": eval_csv,
            "ssv2": ssv2_csv, "table": table.to_csv(index=False)}


@pytest.mark.slow
def test_same_seed_same_world_model_and_tables(tmp_path, monkeypatch):
    """Two smoke experiments from empty caches: byte-identical world, base model, adapter, per-item CSV and table,
    also when one of them was interrupted while scoring and resumed."""
    a, b = _smoke_experiment(tmp_path / "a", monkeypatch), _smoke_experiment(tmp_path / "b")

    files_a = sorted(p.relative_to(a["world"]) for p in a["world"].rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b["world"]) for p in b["world"].rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 100
    manifest = "toyworld.json"  # holds the generation time; everything else in it must agree
    different = [str(f) for f in files_a
                 if str(f) != manifest and (a["world"] / f).read_bytes() != (b["world"] / f).read_bytes()]
    assert different == []
    ma, mb = (json.loads((x["world"] / manifest).read_text()) for x in (a, b))
    ma.pop("generation_seconds"), mb.pop("generation_seconds")
    assert ma == mb

    assert (a["base"] / "model.safetensors").read_bytes() == (b["base"] / "model.safetensors").read_bytes()
    adapter = "adapter_model.safetensors"
    assert (a["run"] / adapter).read_bytes() == (b["run"] / adapter).read_bytes()
    # (the file names differ: the per-item cache key holds the data root's absolute path)
    assert a["eval"].read_bytes() == b["eval"].read_bytes()
    assert a["ssv2"].read_bytes() == b["ssv2"].read_bytes()  # a's was interrupted and resumed
    assert a["table"] == b["table"]
    # and the table is not empty or constant: a determinism check on nothing would prove nothing
    assert len(a["table"].splitlines()) == 1 + 8 * 2
    assert a["exp"].per_item("velociti", "haca", 0)["p_pos"].nunique() > 10

    # safe loading: the base model and the adapter are stored as safetensors only, no pickled weights
    for folder in (a["base"], a["run"]):
        weights = [p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".pkl")]
        assert weights and all(w.endswith(".safetensors") for w in weights), (folder, weights)


# ----------------------------------------------------------------------------- safe loading


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def unsafe_loading(source: str, filename: str = "<src>") -> list[str]:
    """Calls that could run code from a file or the hub: `torch.load` without `weights_only=True`, `pickle.load(s)`,
    any `trust_remote_code=True`, `use_safetensors=False`."""
    found = []
    for call in _calls(ast.parse(source, filename)):
        name = _name(call.func)
        where = f"{filename}:{call.lineno} {name}"
        if name.endswith("torch.load"):
            wo = _kw(call, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append(f"{where} without weights_only=True")
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load"):
            found.append(f"{where} unpickles")
        trc = _kw(call, "trust_remote_code")
        if trc is not None and not (isinstance(trc, ast.Constant) and trc.value is False):
            found.append(f"{where} passes trust_remote_code")
        us = _kw(call, "use_safetensors")
        if isinstance(us, ast.Constant) and us.value is False:
            found.append(f"{where} turns safetensors off")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = ("import torch, pickle\ntorch.load('x')\ntorch.load('x', weights_only=False)\npickle.load(f)\n"
           "M.from_pretrained('m', trust_remote_code=True)\nM.from_pretrained('m', use_safetensors=False)\n")
    assert len(unsafe_loading(bad)) == 5
    assert unsafe_loading("import torch\ntorch.load('x', weights_only=True)\nM.from_pretrained('m')\n") == []


def test_the_package_loads_nothing_unsafely():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 30
    found = [f for p in sources for f in unsafe_loading(p.read_text(encoding="utf-8"), str(p.relative_to(PACKAGE)))]
    assert found == []
    # and no text route around the AST check (e.g. a getattr on "load")
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    assert "trust_remote_code=True" not in text and "weights_only=False" not in text


def test_notebooks_load_nothing_unsafely():
    notebooks = sorted((PACKAGE.parent / "notebooks").glob("[0-9]*.ipynb"))
    assert notebooks
    for nb in notebooks:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        assert unsafe_loading(code, nb.name) == []


SECRETS = {"judge_api_key": "sk-test-0123456789", "hub_token": "hf_test_abcdefghij", "password": "hunter2",
           "nested": {"OPENAI_API_KEY": "sk-nested-secret", "hf_token": ["hf_in_a_list"]}}


def test_secrets_never_reach_a_notebook_provenance_record(tmp_path):
    """End to end as a notebook does it: setup -> attach_run_config -> write_table / save_figure -> files on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from hacalib.notebook import attach_run_config, setup
    from hacalib.report.artifacts import save_figure, write_table

    study, prov = setup("05_table2_qa", preset="toy", data_root="", cache_dir=str(tmp_path / "cache"), seeds=[0],
                        smoke=True, judge_url="http://localhost:1/v1", **SECRETS)
    # the experiments' records (no world is built: describe() needs one, so give each a stand-in)
    for family, exp in study.items():
        exp.describe = lambda: {"preset": "toy", "api_key": "sk-in-the-run-config", "base_model": "toy"}
    prov = attach_run_config(prov, study)
    paths = write_table(pd.DataFrame({"a": [1]}), "t", tmp_path / "fig", prov)
    fig, ax = plt.subplots()
    paths.update({f"fig_{k}": v for k, v in save_figure(fig, "f", tmp_path / "fig", prov).items()})
    plt.close(fig)
    text = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in paths.values())
    for secret in ("sk-test-0123456789", "hf_test_abcdefghij", "hunter2", "sk-nested-secret", "hf_in_a_list",
                   "sk-in-the-run-config"):
        assert secret not in text
    record = json.loads(paths["provenance"].read_text())
    assert record["config"]["judge_api_key"] == "<redacted>"
    assert record["config"]["judge_url"] == "http://localhost:1/v1"  # what is not secret stays readable
    assert all(e["api_key"] == "<redacted>" for e in record["experiments"].values())
    assert set(record["experiments"]) == {"video_llava", "videochat2"}


def test_the_judge_key_never_appears_in_errors():
    from hacalib.scoring.judges import JudgeError, _post

    with pytest.raises(JudgeError) as err:
        _post("http://127.0.0.1:9/v1/chat/completions", {"model": "m"}, "sk-never-printed", timeout=0.5)
    assert "sk-never-printed" not in str(err.value) and err.value.__cause__ is None
