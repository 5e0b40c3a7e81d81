"""`haca reproduce --plan`: every run and evaluation listed with its cache state and an estimate, nothing built.

The toy preset is planned on an empty cache (the world not built: counts from the preset's world size) and on a
smoke cache where some runs and results exist; the paper preset on a small fake data root laid out as the loaders
read it (annotation files only: a plan decodes no video) and on one with files missing (counts say "unknown").
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hacalib.estimates import SPEEDS
from hacalib.experiment import Experiment
from hacalib.plan import make_plan, render
from hacalib.reproduce import ReproduceConfig
from hacalib.samples import SSV2_TEMPORAL_MATRIX, VIDEOCON_SAMPLE

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path) -> Path:
    """A project folder with the notebooks (links: a plan reads only their names) and an empty cache."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    for nb in (ROOT / "notebooks").glob("0*.ipynb"):
        (project / "notebooks" / nb.name).symlink_to(nb)
    return project


def _haca(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hacalib.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _fake_paper_root(where: Path, *, complete: bool = True) -> Path:
    """VideoCon rows (the real sample, deduplicated, its last 12 rows as the test split), the real SSv2-Temporal
    matrix, tiny VELOCITI and MSRVTT-QA files; no videos."""
    with open(VIDEOCON_SAMPLE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    unique = list({tuple(r.values()): r for r in rows}.values())
    for r in unique[-12:]:
        r["split"] = "test"
    (where / "videocon").mkdir(parents=True)
    with open(where / "videocon" / "videocon_llm_entailment.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(unique)
    (where / "ssv2").mkdir()
    (where / "ssv2" / "eval_ssv2_temporal.csv").write_bytes(SSV2_TEMPORAL_MATRIX.read_bytes())
    (where / "velociti").mkdir()
    tests = ["agent_iden", "agent_bind", "action_bind", "action_mod", "action_adv", "coref", "sequence", "control"]
    for test in tests if complete else tests[:3]:
        fields = ("pos_cap", "neg_cap") if test == "control" else ("pos", "neg")
        data = {f"vid{v}": {f"Ev{e}": {fields[0]: f"a man walks {e}", fields[1]: f"a woman runs {e}",
                                        **({"neg_vid": "vid9"} if test == "control" else {})} for e in range(1, 3)}
                for v in range(3)}
        (where / "velociti" / f"{test}.json").write_text(json.dumps(data))
    (where / "msrvtt_qa").mkdir()
    if complete:
        q = [{"video_name": f"video{v}", "question": f"what is shown {k}?", "question_id": v * 10 + k}
             for v in range(5) for k in range(3)]
        a = [{"answer": "man", "type": "what", "question_id": r["question_id"]} for r in q]
        (where / "msrvtt_qa" / "test_q.json").write_text(json.dumps(q))
        (where / "msrvtt_qa" / "test_a.json").write_text(json.dumps(a))
    return where


def test_the_toy_plan_on_an_empty_cache_lists_every_run_and_builds_nothing(tmp_path):
    project = _project(tmp_path)
    proc = _haca("reproduce", "--plan", cwd=project)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert not (project / "cache").exists()  # no world rendered, no model made
    assert "preset toy" in text and "not built yet" in text
    # per model family: 3 base models x 2 seeds x 3 objectives + 3 mask ratios on every base model (06)
    assert "Fine-tuning runs (54; 0 cached; steps x videos per step: 200 x 8)" in text
    assert text.count("shipped (copied once the toy world is built)") == 6  # 3 per family
    assert text.count("Video-LLaVA base") == 3 and text.count("VideoChat2 base") == 3
    assert "1,400 pairs on 700 videos" in text and "2,430 pairs on 270 videos" in text
    assert "<= 1,200 questions on 300 videos" in text
    assert "velociti         10,950 pairs on 300 videos" in text  # drawn without rendering: 5,475 items, pos and neg
    # per family: velociti for 30 models, 4 benchmarks x 21, videocon loglik x 6 (3 base models, 07's 3 runs),
    # velociti and ssv2 loglik x 3 (the base models' perception readouts)
    assert "Evaluations (252 results" in text
    assert "velociti_loglik  21,900 captions on 300 videos" in text and "ssv2_loglik      2,430 captions" in text
    assert "CPU minutes" in text and "figures/02_runs.md" in text
    # each family's estimates come from its own measured speeds
    for slug in ("videollava", "videochat2"):
        assert f"bench/scoring.py --model hacalib/bases/toy-{slug}-seed0" in text
    assert "Video-LLaVA:" in text and "VideoChat2:" in text and "no speed of" not in text


def test_the_plan_follows_only_and_seeds(tmp_path):
    cfg = ReproduceConfig(project_root=_project(tmp_path), only=["05"], seeds=[3], base_seeds=[1])
    plan = make_plan(cfg)
    assert plan.notebooks == ["05_table2_qa"]
    runs = [(s.family, s.row, s.base, s.seed) for s in plan.steps if s.kind == "train"]
    assert runs == [(f, r, 1, 3) for f in ("video_llava", "videochat2") for r in ("entail", "haca", "haca_mask")]
    assert {s.benchmark for s in plan.steps if s.kind == "eval"} == {"qa"}


@pytest.mark.slow
def test_the_toy_plan_sees_what_is_cached(tmp_path, monkeypatch):
    """On the smoke preset: a finished run and a cached per-item result are 'cached', the rest is not."""
    project = _project(tmp_path)
    cfg = ReproduceConfig(project_root=project, smoke=True, only=["03"], seeds=[0], base_seeds=[0],
                          families=["video_llava"])
    exp = Experiment(preset="toy", cache_dir=str(cfg.cache_dir), smoke=True, seeds=(0,), base_seeds=(0,))
    before = make_plan(cfg)
    assert all(s.status != "cached" for s in before.steps)
    assert "velociti         96 pairs on " in render(before)  # counted before the world exists, as after
    exp.per_item("velociti", "pretrained")  # builds the world and pretrains the smoke base model
    exp.finetuned("entail", 0)
    after = {(s.kind, s.row, s.benchmark): s.status for s in make_plan(cfg).steps}
    assert after[("base", "pretrained", "")] == "cached"
    assert after[("eval", "pretrained", "velociti")] == "cached"
    assert after[("train", "entail", "")] == "cached"
    assert after[("eval", "entail", "velociti")] == "to run"
    assert after[("train", "haca", "")] == "to train"
    text = render(make_plan(cfg))
    assert "Fine-tuning runs (3; 1 cached" in text, text
    assert "velociti         96 pairs on " in text, text  # the built world's count: 8 tests x 6 items, pos and neg


def test_the_paper_plan_lists_runs_counts_and_gpu_hours(tmp_path):
    data = _fake_paper_root(tmp_path / "data")
    proc = _haca("reproduce", "--plan", "--preset", "videollava-7b", "--data-root", str(data), cwd=_project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "preset videollava-7b" in text and "GPU-h" in text and "H200" in text
    # one base model (the hub model), 3 seeds x 3 objectives + 3 other mask ratios
    assert "Fine-tuning runs (12; 0 cached; steps x videos per step: 2,000 x 8)" in text
    assert "hub model LanguageBind/Video-LLaVA-7B-hf@d814f26332 (downloaded on first use" in text
    assert "velociti         96 pairs on 3 videos" in text  # 8 tests x 3 videos x 2 events, pos and neg
    assert "videocon         24 pairs on 12 videos (12 held-out rows)" in text
    assert "ssv2             3,888 pairs on 216 videos (temporal 18x216)" in text
    assert "qa               15 questions on 5 videos" in text
    assert "lower bound" in text  # generation at 7B was never measured: said so
    assert "to train" in text and "Estimated time left (GPU-hours)" in text
    gpu = [line for line in text.splitlines() if line.strip().startswith("training")][0]
    assert "12 runs" in gpu and "GPU-h" in gpu


def test_the_videochat2_paper_plan_names_its_model_folder(tmp_path):
    data = _fake_paper_root(tmp_path / "data")
    model = tmp_path / "videochat2"
    args = ("reproduce", "--plan", "--preset", "videochat2-7b", "--data-root", str(data))
    project = _project(tmp_path)
    missing = _haca(*args, cwd=project)
    assert missing.returncode == 2 and "needs --model-path" in missing.stderr
    absent = _haca(*args, "--model-path", str(model), cwd=project)
    assert absent.returncode == 2 and "is not a folder" in absent.stderr
    model.mkdir()
    text = _haca(*args, "--model-path", str(model), cwd=project).stdout
    assert f"VideoChat2 base 0: local model folder {model}" in text
    assert "Fine-tuning runs (12; 0 cached" in text
    assert "no speed of VideoChat2 is recorded for this preset yet: its times are estimated" in text


def test_the_paper_plan_says_unknown_for_missing_files_and_names_a_bad_one(tmp_path):
    data = _fake_paper_root(tmp_path / "data", complete=False)
    with open(VIDEOCON_SAMPLE, encoding="utf-8") as f:  # the real sample, one caption emptied
        lines = f.read().splitlines(keepends=True)
    head, row = lines[0], lines[1].split(",")
    row[2] = '""'
    (data / "videocon" / "videocon_llm_entailment.csv").write_text(head + ",".join(row) + "".join(lines[2:]),
                                                                   encoding="utf-8")
    proc = _haca("reproduce", "--plan", "--preset", "videollava-7b", "--data-root", str(data), cwd=_project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "velociti         unknown on unknown videos (missing action_mod.json" in text
    assert f"qa               unknown on unknown videos (missing {data / 'msrvtt_qa' / 'test_q.json'})" in text
    assert "videocon         unknown on unknown videos (cannot run: " in text and "row 0, key 'caption'" in text
    assert "+ " in text and "steps whose time is unknown" in text


def test_every_speed_names_its_device_and_source():
    for preset, speeds in SPEEDS.items():
        for s in speeds:
            assert s.value > 0 and s.device and s.source, (preset, s)


def test_the_generation_bench_prints_its_json_line(tmp_path, capsys):
    """bench/generation.py, the source of the toy preset's `generate` speed, on a tiny random-weight run."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_generation", ROOT / "bench" / "generation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--videos", "2", "--questions", "3", "--batch", "4", "--max-new-tokens", "2", "--repeats", "1",
                         "--threads", "1"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["bench"] == "generation" and result["questions"] == 6 and result["questions_per_s"] > 0


def test_a_run_is_costed_at_its_own_objective_and_family():
    from hacalib.estimates import _speed, speeds_for, speeds_key

    chat2 = speeds_for("toy", "videochat2")
    assert _speed(chat2, "train_video", "haca_mask") > _speed(chat2, "train_video", "entail")  # its 3rd target
    assert _speed(speeds_for("videollava-7b"), "train_video", "haca") == 0.40  # one measured step for every objective
    assert speeds_key("toy", "videochat2") == ("toy-videochat2", True)
    assert speeds_key("videochat2-7b", "videochat2") == ("videollava-7b", False)  # no VideoChat2-7B speed yet


def test_corrections_are_costed_at_their_own_rate_where_one_was_measured():
    """A correction is a generated caption, not a one-word answer: the toy preset has its own rate; the 7B presets
    (no generation measured) cost each prompt as one full forward."""
    from hacalib.estimates import Count, estimate_eval, scoring_cost, speeds_for

    held = Count(700, 700, "prompts")
    for family in ("video_llava", "videochat2"):
        toy = speeds_for("toy", family)
        correct = next(s.value for s in toy if s.name == "correct")
        generate = next(s.value for s in toy if s.name == "generate")
        assert estimate_eval(toy, "corrections", held, "to run") == pytest.approx(700 / correct)
        assert estimate_eval(toy, "qa", held, "to run") == pytest.approx(700 / generate)
        assert estimate_eval(toy, "corrections", held, "cached") == 0.0
    big = speeds_for("videollava-7b")
    a, b = scoring_cost(big)
    assert estimate_eval(big, "corrections", held, "to run") == pytest.approx(700 * (a + b))
