"""Toy pretraining: same seed -> same weights, the cache, bad records, and a 2-process (gloo) run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from safetensors.torch import load_file

from hacalib.config import PretrainConfig
from hacalib.errors import DataError
from hacalib.training.metrics_log import read_metrics
from hacalib.training.pretrain import PRETRAIN_FILE, load_pretrain_records, pretrain_toy_model

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY = PretrainConfig(steps=3, batch_size=4, warmup_steps=1, log_every=1, checkpoint_every=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from hacalib.toyworld import build_world

    root = tmp_path_factory.mktemp("world")
    build_world(root, size="smoke", seed=0)
    return root


def test_same_seed_same_model_and_cache(world, tmp_path):
    a = pretrain_toy_model(world, tmp_path / "a", TINY, progress=False)
    b = pretrain_toy_model(world, tmp_path / "b", TINY, progress=False)
    c = pretrain_toy_model(world, tmp_path / "c", TINY, seed=1, progress=False)
    wa, wb, wc = (load_file(str(p / "model.safetensors")) for p in (a, b, c))
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)  # bit-identical
    assert any((wa[k] != wc[k]).any() for k in wa)
    summary = json.loads((a / "pretrain.json").read_text())
    assert summary["config"]["steps"] == 3 and summary["examples_by_task"]["entail"] > 0
    assert [r["step"] for r in read_metrics(a / "metrics.jsonl")] == [1, 2, 3]
    assert not (tmp_path / "a.run").exists()  # checkpoints removed once the model is saved

    # cached: same config and world -> no training (the files are not rewritten)
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    assert pretrain_toy_model(world, a, TINY, progress=False) == a
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime
    # the reloaded model is the saved one, like any hub model
    from hacalib.models import load_model

    model, processor = load_model(a)
    model.save_pretrained(tmp_path / "resaved")
    again = load_file(str(tmp_path / "resaved/model.safetensors"))
    assert again.keys() == wa.keys() and all((again[k] == wa[k]).all() for k in wa)
    assert processor.tokenizer.convert_tokens_to_ids("Yes") != processor.tokenizer.unk_token_id


def test_changed_config_retrains(world, tmp_path):
    out = pretrain_toy_model(world, tmp_path / "m", replace(TINY, steps=1), progress=False)
    first = json.loads((out / "pretrain.json").read_text())["cache_key"]
    pretrain_toy_model(world, out, replace(TINY, steps=2), progress=False)
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["cache_key"] != first and summary["config"]["steps"] == 2


def test_bad_pretrain_records_name_file_and_row(world, tmp_path):
    bad = tmp_path / "bad_world"
    shutil.copytree(world, bad)
    lines = (bad / PRETRAIN_FILE).read_text().splitlines()
    rec = json.loads(lines[2])
    rec["answer"] = ""
    lines[2] = json.dumps(rec)
    (bad / PRETRAIN_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"pretrain.jsonl, row 2, key 'answer'"):
        load_pretrain_records(bad / PRETRAIN_FILE)
    rec["answer"] = "a zebra"  # not a toy-world word
    lines[2] = json.dumps(rec)
    (bad / PRETRAIN_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 2, key 'answer'.*outside the toy vocabulary"):
        pretrain_toy_model(bad, tmp_path / "m", TINY, progress=False)


def test_two_process_gloo_run(world, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"steps": 3, "batch_size": 2, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2}))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "hacalib.training.pretrain",
           "--world", str(world), "--out", str(out), "--config", str(cfg), "--no-progress"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(str(out)) == 2  # both ranks finished
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["processes"] == 2
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]  # logged once, not per rank


def test_evaluate_toy_model_reports_on_held_out_rows(world, tmp_path):
    from hacalib.scoring.evaluate import evaluate_toy_model

    model_dir = pretrain_toy_model(world, tmp_path / "m", replace(TINY, steps=1), progress=False)
    report = evaluate_toy_model(model_dir, world, limit=6)
    assert report["n_rows"] == 6 and 1 <= report["n_videos"] <= 6
    for key in ("caption_exact", "yes_no_accuracy", "pairwise_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["pyes_std"] >= 0.0
    with pytest.raises(DataError, match="no rows with split 'nope'"):
        evaluate_toy_model(model_dir, world, split="nope")
