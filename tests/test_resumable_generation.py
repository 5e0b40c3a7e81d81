"""Resumable generation (`hacalib.scoring.answers_file.generate_to_file`): a QA run killed with SIGKILL resumes
without re-answering finished videos and ends byte-identical to an uninterrupted run; a torn last line and a partly
answered video are redone; a file written for other inputs is refused naming it; `Experiment` resumes its QA.

The killed job runs in a subprocess with one torch thread, as do the reference runs it is compared with. The kill
is deterministic: the child blocks (and says so with a marker file) when it starts decoding a chosen video, and
only then is it killed, so the file holds exactly what was written before that point.
"""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hacalib.data.video import write_mp4
from hacalib.errors import DataError
from hacalib.models import build_toy_model, family_of, load_model, save_model
from hacalib.scoring.answers_file import generate_to_file
from hacalib.scoring.generation import generate_texts, generation_batches
from hacalib.scoring.requests import ScoreRequest

ROOT = Path(__file__).resolve().parents[1]
WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it what color".split()
QUESTIONS = ["what moves?", "what color is the circle?", "what grows?", "what color is it?", "what shrinks slowly?"]
PER_VIDEO = [2, 1, 5, 3, 2, 4, 1, 2]  # questions per video: video 2 needs two calls of 4, others share calls
GEN = {"max_new_tokens": 4, "batch_size": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved toy model whose greedy text depends on the prompt and video, 8 mp4 videos and their questions."""
    where = tmp_path_factory.mktemp("gen")
    model, proc = build_toy_model(WORDS, seed=0)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for name, w in model.named_parameters():
            if w.dim() == 2 and ("language_model" in name or "projector" in name or "lm_head" in name):
                w.normal_(0, 0.3)
    model_dir = save_model(model, proc, where / "model")
    rng = np.random.default_rng(0)
    items = []
    for v, n in enumerate(PER_VIDEO):
        path = where / f"video{v}.mp4"
        write_mp4(path, rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), fps=8)
        items += [[str(path), QUESTIONS[(v + k) % len(QUESTIONS)]] for k in range(n)]
    (where / "items.json").write_text(json.dumps(items))
    return where, model_dir, items


def _inputs(model, items):
    template = family_of(model).template
    return [ScoreRequest(p, q) for p, q in items], [template.qa_prompt(q) for _, q in items]


SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import torch
    from hacalib.models import family_of, load_model
    from hacalib.scoring.answers_file import generate_to_file
    from hacalib.scoring.requests import ScoreRequest

    torch.set_num_threads(1)
    model_dir, items_file, out, block_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    model, proc = load_model(model_dir, dtype="float32")
    family = family_of(model)
    items = json.loads(Path(items_file).read_text())
    requests = [ScoreRequest(p, q) for p, q in items]
    prompts = [family.template.qa_prompt(q) for _, q in items]

    class Gate(dict):
        # counts decoded videos; blocks (for the parent's SIGKILL) when it starts decoding video number `block_at`
        def __setitem__(self, key, value):
            if len(self) + 1 == block_at:
                Path(out + ".blocked").write_text(key)
                time.sleep(600)
            print("decoded", key, flush=True)
            super().__setitem__(key, value)

    generate = family.generate
    def counting(model, ids, *args, **kwargs):
        print("generate", ids.shape[0], flush=True)
        return generate(model, ids, *args, **kwargs)
    family.generate = counting
    generate_to_file(model, proc, requests, prompts, out, max_new_tokens=4, batch_size=4, video_cache=Gate())
""")


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _child(setup, out: Path, block_at: int = 0, **kw):
    where, model_dir, _ = setup
    script = where / "answer.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(model_dir), str(where / "items.json"), str(out), str(block_at)]
    if block_at:
        return subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=_env(), check=True, capture_output=True, text=True, timeout=300, **kw)


def _log(stdout: str) -> tuple[list[str], list[int]]:
    """(videos decoded, prompts per generate call) from a child's output."""
    lines = [line.split() for line in stdout.splitlines()]
    return [p[1] for p in lines if p[0] == "decoded"], [int(p[1]) for p in lines if p[0] == "generate"]


def _videos_in(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    return list(dict.fromkeys(r["video"] for r in rows))


def test_the_batch_plan_keeps_videos_whole_where_it_can(setup):
    _, _, items = setup
    requests = [ScoreRequest(p, q) for p, q in items]
    plan = [sorted({Path(requests[i].video).stem for i in idx}) for idx in generation_batches(requests, 4)]
    assert plan == [["video0", "video1"], ["video2"], ["video2", "video3"], ["video4"], ["video5"],
                    ["video6", "video7"]]
    assert sorted(i for idx in generation_batches(requests, 4) for i in idx) == list(range(len(items)))


def test_a_killed_qa_run_resumes_without_reanswering_and_ends_byte_identical(setup, tmp_path):
    ref = tmp_path / "ref.jsonl"
    full = _child(setup, ref)
    decoded_full, calls_full = _log(full.stdout)
    assert len(decoded_full) == len(PER_VIDEO) and sum(calls_full) == sum(PER_VIDEO) and len(calls_full) == 6

    out = tmp_path / "cut.jsonl"
    # blocked on decoding video3 (the 4th): calls 1-2 are done, video2 is half answered (its first call of 4)
    proc = _child(setup, out, block_at=4)
    t0 = time.monotonic()
    while not Path(f"{out}.blocked").is_file():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < 240, "the child never reached the kill point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert [Path(v).stem for v in _videos_in(out)] == ["video0", "video1"]  # video2 is half done: not written

    again = _child(setup, out)
    decoded, calls = _log(again.stdout)
    assert [Path(v).stem for v in decoded] == [f"video{v}" for v in range(2, 8)]  # finished videos not redone
    assert sum(calls) == sum(PER_VIDEO) - PER_VIDEO[0] - PER_VIDEO[1] and len(calls) == 5
    assert out.read_bytes() == ref.read_bytes()


def test_a_torn_last_line_redoes_only_its_call(setup, tmp_path, monkeypatch):
    where, model_dir, items = setup
    model, proc = load_model(model_dir, dtype="float32")
    requests, prompts = _inputs(model, items)
    out = tmp_path / "answers.jsonl"
    answers = generate_to_file(model, proc, requests, prompts, out, **GEN)
    assert answers == generate_texts(model, proc, requests, prompts, **GEN)  # the same answers as without a file
    assert len(set(answers)) > 1
    ref = out.read_bytes()
    out.write_bytes(ref[:-7])  # the last line (video7's) torn mid-way

    family = family_of(model)
    calls: list[int] = []
    generate = family.generate
    monkeypatch.setattr(family, "generate", lambda m, ids, *a, **k: calls.append(ids.shape[0]) or generate(m, ids, *a, **k))
    again = generate_to_file(model, proc, requests, prompts, out, **GEN)
    # video7 shared its call with video6: both are answered again, in that same call, and nothing else
    assert calls == [PER_VIDEO[6] + PER_VIDEO[7]]
    assert again == answers
    assert out.read_bytes() == ref
    assert generate_to_file(model, proc, requests, prompts, out, **GEN) == answers and calls == [3]  # complete: no call


@pytest.mark.parametrize("change, field", [
    ("max_new_tokens", "generation.max_new_tokens"),
    ("question", "requests.sha256"),
    ("weights", "model.weights_sha256"),
])
def test_a_file_for_other_inputs_is_refused_naming_it(setup, tmp_path, change, field):
    where, model_dir, items = setup
    model, proc = load_model(model_dir, dtype="float32")
    requests, prompts = _inputs(model, items[:3])
    out = tmp_path / "answers.jsonl"
    generate_to_file(model, proc, requests, prompts, out, **GEN)
    before = out.read_bytes()
    kw = dict(GEN)
    if change == "max_new_tokens":
        kw["max_new_tokens"] = 5
    elif change == "question":
        requests, prompts = _inputs(model, [items[0], [items[1][0], "what shrinks?"], items[2]])
    else:
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "lm_head" in n).mul_(1.01)
    with pytest.raises(DataError, match=rf"{re.escape(str(out))}, row 0, key 'header': written for other inputs: .*{field}"):
        generate_to_file(model, proc, requests, prompts, out, **kw)
    assert out.read_bytes() == before  # refused before anything was written


def test_a_file_that_is_not_an_answers_file_is_refused(setup, tmp_path):
    where, model_dir, items = setup
    model, proc = load_model(model_dir, dtype="float32")
    requests, prompts = _inputs(model, items[:2])
    out = tmp_path / "scores.csv"
    out.write_text("request,video_id,caption,score\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(out))}, row 0: first line is not a hacalib.answers/1 header"):
        generate_to_file(model, proc, requests, prompts, out, **GEN)
    generate_to_file(model, proc, requests, prompts, tmp_path / "ok.jsonl", **GEN)
    lines = (tmp_path / "ok.jsonl").read_text().splitlines()
    (tmp_path / "ok.jsonl").write_text("\n".join([lines[0], lines[1].replace('"i": 0', '"i": "zero"'), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"ok.jsonl, row 1: expected an object"):
        generate_to_file(model, proc, requests, prompts, tmp_path / "ok.jsonl", **GEN)


class Interrupt(BaseException):
    """What a kill does to the generation loop, raised in-process (a real SIGKILL: the test above)."""


@pytest.mark.slow
def test_experiment_qa_resumes_after_an_interruption(setup, tmp_path, monkeypatch):
    """`Experiment.per_item("qa")` keeps answers per finished video and continues from them; the per-item CSV equals
    an uninterrupted experiment's byte for byte."""
    import hacalib.experiment as experiment
    import hacalib.scoring.generation as generation
    from hacalib.experiment import Experiment

    _, model_dir, _ = setup
    every_question = experiment.get_preset
    # all 48 smoke questions (12 videos): three calls of 16, so an interruption can fall between calls
    # (videos not kept across calls: the decodes counted below are what shows a finished video is not asked again)
    monkeypatch.setattr(experiment, "get_preset", lambda name, smoke, family=None: replace(
        every_question(name, smoke=smoke, family=family), qa_questions=None, keep_videos=False))

    def experiment_in(cache: Path) -> Experiment:
        exp = Experiment(preset="toy", cache_dir=str(cache), seeds=(0,), smoke=True)
        monkeypatch.setattr(exp, "base_model", lambda base=None: model_dir)  # a saved toy model, no pretraining
        return exp

    shared = tmp_path / "cache"
    exp = experiment_in(shared)
    original = generation.VideoLoader.__call__
    decoded: list[str] = []
    stop_at = [9]

    def counting(self, request):
        if request.key() not in self.cache:
            if len(decoded) + 1 == stop_at[0]:
                raise Interrupt()
            decoded.append(request.key())
        return original(self, request)

    monkeypatch.setattr(generation.VideoLoader, "__call__", counting)
    with pytest.raises(Interrupt):
        exp.per_item("qa", "pretrained")
    progress = next((Path(model_dir) / "eval").glob(".qa-*.scores")) / "qa.jsonl"
    kept = set(_videos_in(progress))
    assert len(kept) == 8  # two calls of 16 questions = 8 videos finished before the interruption
    decoded.clear()
    stop_at[0] = 0
    items = exp.per_item("qa", "pretrained")
    assert len(decoded) == 4 and not kept & set(decoded)
    assert len(items) == 48 and not list((Path(model_dir) / "eval").glob(".qa-*"))  # progress removed once done
    done = next((Path(model_dir) / "eval").glob("qa-*.csv"))
    first = done.read_bytes()
    done.unlink()  # the same evaluation from scratch, without interruption
    monkeypatch.setattr(generation.VideoLoader, "__call__", original)
    experiment_in(shared).per_item("qa", "pretrained")
    assert done.read_bytes() == first


@pytest.mark.slow
def test_experiment_corrections_go_through_the_answers_file(setup, tmp_path, monkeypatch):
    """The corrections evaluation writes its answers file with the correction length (48 new tokens) and gives the
    answers the plain path gives."""
    import hacalib.scoring.benchmark as benchmark
    from hacalib.experiment import Experiment
    from hacalib.scoring import evaluate

    _, model_dir, _ = setup
    exp = Experiment(preset="toy", cache_dir=str(tmp_path / "cache"), seeds=(0,), smoke=True)
    monkeypatch.setattr(exp, "base_model", lambda base=None: model_dir)
    seen = []
    original = benchmark.evaluate_benchmark

    def keep_header(name, model, processor, root, preset, progress, **kw):
        df = original(name, model, processor, root, preset, progress, **kw)
        seen.append(json.loads((progress / "corrections.jsonl").read_text().splitlines()[0]))
        return df

    monkeypatch.setattr(benchmark, "evaluate_benchmark", keep_header)
    got = exp.per_item("corrections", "pretrained")
    assert seen[0]["generation"]["max_new_tokens"] == 48 and seen[0]["requests"]["count"] == len(got) == 14
    model, proc = exp.model("pretrained")
    plain = evaluate.correction_answers(model, proc, exp.root, limit=exp.config.videocon_heldout)
    assert got["answer"].tolist() == plain["answer"].tolist()
