"""Every GPU of a node through accelerate (issue 18 item 2), shown on CPUs with gloo.

Evaluation shared by processes (`hacalib.scoring.shards`): shares cut from the one-process batch plan, per-item files
byte-identical to one process's, in-process (two ranks in turn) and through real `accelerate launch` from
`Experiment(num_processes=2)`. Fine-tuning under `accelerate launch` with 2 processes: killed with SIGKILL, resumed,
ending byte-identical to an uninterrupted 2-process run. `haca reproduce --smoke --num-processes 2` (notebook 03)
writing the per-item CSVs and tables of a one-process reproduction.

Children run with one torch thread, as this process does, so both sides do the same float operations.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hacalib.experiment import Experiment
from hacalib.launch import _child_env, accelerate_command
from hacalib.scoring import evaluate
from hacalib.scoring.generation import generation_batches
from hacalib.scoring.pyes import pyes_forwards
from hacalib.scoring.requests import ScoreRequest
from hacalib.scoring.shards import Shard, split_forwards

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def _env() -> dict:
    return {**_child_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _children_one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


# ---------------------------------------------------------------------------------------------- the share plan
def _requests(counts: list[int]) -> list[ScoreRequest]:
    return [ScoreRequest(f"v{v}.mp4", f"caption {k}") for v, n in enumerate(counts) for k in range(n)]


def _check_partition(shares, requests):
    flat = sorted(i for s in shares for i in s)
    assert flat == list(range(len(requests)))  # every request exactly once
    owner = {}
    for r, s in enumerate(shares):
        for i in s:
            assert owner.setdefault(requests[i].key(), r) == r  # whole videos


def test_shares_are_runs_of_whole_forwards_and_form_the_one_process_batches():
    requests = _requests([3, 5, 2, 40, 4, 6, 1, 7, 3, 3])  # video 3 needs two packed sequences (32 + 8)
    plan = pyes_forwards(requests, batch_size=2, segments_per_pack=32)
    shares = split_forwards(plan, requests, 3)
    _check_partition(shares, requests)
    assert all(shares)
    for share in shares:
        # the share's own plan is the one-process plan's forwards over its requests, in local indices
        local = {g: i for i, g in enumerate(share)}
        mine = [[local[i] for i in f] for f in plan if f[0] in local]
        assert pyes_forwards([requests[i] for i in share], batch_size=2, segments_per_pack=32) == mine
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 40 + 7  # as equal as cuts between whole forwards allow


def test_generation_shares_keep_the_one_process_calls():
    requests = _requests([24, 24, 9, 30, 24, 5])  # MSRVTT-QA-like: ~24 questions a video, 16 a call
    plan = generation_batches(requests, 16)
    shares = split_forwards(plan, requests, 2)
    _check_partition(shares, requests)
    for share in shares:
        local = {g: i for i, g in enumerate(share)}
        assert generation_batches([requests[i] for i in share], 16) == [[local[i] for i in c] for c in plan
                                                                        if c[0] in local]


def test_without_enough_clean_cuts_every_process_still_gets_videos():
    requests = _requests([4, 4, 4])  # 12 questions: one generate call, no cut between calls
    plan = generation_batches(requests, 16)
    assert len(plan) == 1
    shares = split_forwards(plan, requests, 2)
    _check_partition(shares, requests)
    assert sorted(len(s) for s in shares) == [4, 8]
    five = split_forwards(plan, requests, 5)  # more processes than videos: some idle
    _check_partition(five, requests)
    assert sum(bool(s) for s in five) == 3


# ---------------------------------------------------------------------------------------------- launching
def test_a_users_accelerate_config_is_passed_through_and_a_missing_one_refused(tmp_path):
    from hacalib.errors import UsageError

    config = tmp_path / "fsdp.yaml"
    config.write_text("distributed_type: FSDP\n")
    cmd = accelerate_command("hacalib.training.cli", ["--config", "run.json"], num_processes=8,
                             accelerate_config=config)
    assert cmd[cmd.index("--config_file") + 1] == str(config) and "--multi_gpu" not in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "8" and cmd[-4:] == ["-m", "hacalib.training.cli", "--config",
                                                                         "run.json"]
    plain = accelerate_command("hacalib.shard_cli", [], num_processes=2)
    assert "--multi_gpu" in plain and "--config_file" not in plain
    with pytest.raises(UsageError, match="nope.yaml.*is not a file"):
        Experiment(preset="toy", smoke=True, num_processes=2, accelerate_config=str(tmp_path / "nope.yaml"))
    with pytest.raises(UsageError, match="used by the launches of num_processes > 1"):
        Experiment(preset="toy", smoke=True, accelerate_config=str(config))
    with pytest.raises(UsageError, match="num_processes must be an integer >= 1"):
        Experiment(preset="toy", smoke=True, num_processes=0)


def test_reproduce_checks_the_process_settings_and_the_plan_names_them(tmp_path, capsys):
    from hacalib.cli import main
    from hacalib.plan import make_plan, render
    from hacalib.reproduce import ReproduceConfig, notebook_parameters

    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "03_table1_velociti.ipynb", tmp_path / "notebooks")
    with pytest.raises(SystemExit) as stop:  # argparse's own refusal
        main(["reproduce", "--num-processes", "0", "--project-root", str(tmp_path)])
    assert stop.value.code == 2 and "--num-processes: expected an integer >= 1, got '0'" in capsys.readouterr().err
    missing = str(tmp_path / "none.yaml")
    assert main(["reproduce", "--num-processes", "2", "--accelerate-config", missing,
                 "--project-root", str(tmp_path)]) == 2
    assert "is not a file" in capsys.readouterr().err
    cfg = ReproduceConfig(project_root=tmp_path, smoke=True, num_processes=2)
    assert notebook_parameters(cfg)["num_processes"] == 2
    assert "2 processes (accelerate launch)" in render(make_plan(cfg))
    assert "processes (accelerate launch)" not in render(make_plan(ReproduceConfig(project_root=tmp_path, smoke=True)))


@pytest.mark.slow
def test_a_failed_launch_names_its_log(tmp_path):
    from hacalib.launch import LaunchFailed, run_launched

    log = tmp_path / "launch.log"
    # the two processes share the log, and their tracebacks can interleave mid-line: the error is named, maybe
    # without its module prefix
    with pytest.raises(LaunchFailed, match=r"(?s)a test launch failed in 2 processes.*launch\.log\. The processes "
                                           r"raised:\n(hacalib\.errors\.)?DataError: .*nope\.json: file not found"):
        run_launched("hacalib.shard_cli", ["--spec", str(tmp_path / "nope.json")], num_processes=2, log=log,
                     what="a test launch")


# ---------------------------------------------------------------------------------------------- per-item results
@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Experiment:
    return Experiment(preset="toy", cache_dir=str(tmp_path_factory.mktemp("cache")), seeds=(0,), base_seeds=(0,),
                      smoke=True)


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", ["velociti", "videocon", "videocon_loglik", "velociti_loglik", "ssv2_loglik",
                                       "qa", "corrections"])
def test_two_shares_give_the_one_process_per_item_file_byte_for_byte(exp, benchmark, tmp_path):
    """Both ranks in this process in turn: rank 0's `wait` runs rank 1, which reads rank 0's finished share."""
    model, processor = exp.model("haca", 0)
    fn, kw = {"velociti": (evaluate.velociti_items, {"limit_per_test": exp.config.velociti_per_test}),
              "videocon": (evaluate.videocon_pairs, {"limit": exp.config.videocon_heldout}),
              "videocon_loglik": (evaluate.videocon_loglik, {"limit": exp.config.videocon_heldout}),
              "velociti_loglik": (evaluate.velociti_loglik, {"limit_per_test": exp.config.velociti_per_test}),
              "ssv2_loglik": (evaluate.retrieval_loglik, {}),
              "qa": (evaluate.qa_answers, {"limit": exp.config.qa_questions}),
              "corrections": (evaluate.correction_answers, {"limit": exp.config.videocon_heldout})}[benchmark]
    if benchmark not in ("qa", "corrections"):
        kw["batch_size"] = exp.config.score_batch
    suffix = ".jsonl" if benchmark in ("qa", "corrections") else ".csv"
    one = fn(model, processor, exp.root, resume_file=tmp_path / f"one{suffix}", **kw)
    shared = tmp_path / f"shared{suffix}"

    def rank1():
        fn(model, processor, exp.root, resume_file=shared, shard=Shard(1, 2), **kw)

    two = fn(model, processor, exp.root, resume_file=shared, shard=Shard(0, 2, wait=rank1), **kw)
    assert two.to_csv(index=False) == one.to_csv(index=False)
    stem = "shared_toy" if benchmark == "ssv2_loglik" else "shared"  # one file per retrieval matrix
    assert sorted(p.name for p in tmp_path.glob(f"{stem}.shard*")) == [f"{stem}.shard0of2{suffix}",
                                                                       f"{stem}.shard1of2{suffix}"]


@pytest.mark.slow
def test_a_share_cut_short_resumes_to_the_same_files(exp, tmp_path):
    """A share's file holds what its process finished (per video, as one process's file): cut one back to its first
    video, run again, and both shares end byte-identical with the same answers."""
    model, processor = exp.model("haca", 0)
    kw = {"limit": exp.config.qa_questions, "resume_file": tmp_path / "qa.jsonl"}

    def run():
        rank1 = lambda: evaluate.qa_answers(model, processor, exp.root, shard=Shard(1, 2), **kw)  # noqa: E731
        return evaluate.qa_answers(model, processor, exp.root, shard=Shard(0, 2, wait=rank1), **kw)

    first = run()
    files = {p: p.read_bytes() for p in sorted(tmp_path.glob("qa.shard*"))}
    assert len(files) == 2
    cut = max(files, key=lambda p: len(files[p].splitlines()))
    lines = files[cut].splitlines(keepends=True)
    video = json.loads(lines[1])["video"]
    cut.write_bytes(b"".join(lines[:1] + [x for x in lines[1:] if json.loads(x)["video"] == video]) + b'{"i": 9')
    assert run().equals(first)
    assert {p: p.read_bytes() for p in files} == files


@pytest.mark.slow
def test_two_shares_give_the_one_process_retrieval_scores(exp, tmp_path):
    model, processor = exp.model("haca", 0)
    for name in exp.root.ssv2_names():
        _, one = evaluate.retrieval_scores(model, processor, exp.root, name, resume_file=tmp_path / f"one-{name}.csv",
                                           batch_size=exp.config.score_batch)
        shared = tmp_path / f"shared-{name}.csv"
        kw = {"resume_file": shared, "batch_size": exp.config.score_batch}

        def rank1(name=name, kw=kw):
            evaluate.retrieval_scores(model, processor, exp.root, name, shard=Shard(1, 2), **kw)

        _, two = evaluate.retrieval_scores(model, processor, exp.root, name, shard=Shard(0, 2, wait=rank1), **kw)
        assert two.tobytes() == one.tobytes(), name


@pytest.mark.slow
def test_two_processes_under_accelerate_launch_write_the_one_process_csvs(exp, tmp_path, monkeypatch):
    import hacalib.launch

    two = Experiment(**{**exp.launch_fields(), "seeds": (0,), "base_seeds": (0,)}, num_processes=2)
    for benchmark in ("qa",):  # VELOCITI goes through the same launch in the reproduce test below
        path = exp.eval_file(benchmark, exp._base_results_dir(0), 0)
        one = exp.per_item(benchmark, "pretrained", 0)
        reference = path.read_bytes()
        path.unlink()
        got = two.per_item(benchmark, "pretrained", 0)
        assert path.read_bytes() == reference, benchmark
        assert got.equals(one)
        assert not path.with_name(f".{path.stem}.scores").exists()  # shares and launch log removed once merged
        calls = []
        with monkeypatch.context() as m:  # a finished result is never computed again
            m.setattr(hacalib.launch, "launch_evaluation", lambda *a, **k: calls.append(a))
            again = Experiment(**{**exp.launch_fields(), "seeds": (0,), "base_seeds": (0,)}, num_processes=2)
            assert again.per_item(benchmark, "pretrained", 0).equals(one) and not calls


# ---------------------------------------------------------------------------------------------- fine-tuning
STEPS, EVERY = 12, 3
TRAIN = {"max_steps": STEPS, "batch_size": 4, "warmup_steps": 2, "lr": 2e-3, "log_every": 1,
         "checkpoint_every": EVERY, "keep_checkpoints": 2, "objective": "haca", "seed": 0}
MODEL = {"preset": "toy", "dtype": "float32", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


def _train_cmd(exp: Experiment, out: Path, tmp: Path) -> list[str]:
    run = tmp / f"{out.name}.json"
    run.write_text(json.dumps({"data_root": str(exp.root.path), "base_model": str(exp.base_model(0)),
                               "out_dir": str(out), "train": TRAIN, "model": MODEL, "global_batch": True}))
    return accelerate_command("hacalib.training.cli", ["--config", str(run), "--no-progress"], num_processes=2)


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the training processes through /proc (Linux)")
def test_a_two_process_accelerate_run_killed_with_sigkill_resumes_to_the_same_adapter(exp, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_train_cmd(exp, ref, tmp_path), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    out = tmp_path / "cut"
    ckpts = out.with_name("cut.run") / "checkpoints"
    # SIGKILL to every process of the run at once: the launcher and both training processes, as a lost node would
    proc = subprocess.Popen(_train_cmd(exp, out, tmp_path), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.monotonic()
        while not (ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir())):
            assert proc.poll() is None, f"training ended (rc {proc.returncode}) before its first checkpoint"
            assert time.monotonic() - t0 < 300, "no checkpoint within 300 s"
            time.sleep(0.02)
    finally:
        tree = _descendants(proc.pid)  # the launcher and the training processes (torchrun starts them apart)
        for pid in [proc.pid, *tree]:
            _kill(pid)
        proc.wait(timeout=60)
    t0 = time.monotonic()
    while any(_alive(pid) for pid in tree):
        assert time.monotonic() - t0 < 60, "a training process outlived the kill"
        time.sleep(0.05)
    assert len(tree) >= 2
    assert not out.exists()  # killed mid-run: nothing a later run would take for a result
    saved = sorted(int(p.name[5:]) for p in ckpts.iterdir() if p.name.startswith("step_"))
    assert saved and saved[-1] < STEPS

    again = subprocess.run(_train_cmd(exp, out, tmp_path), env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    info = json.loads((out / "finetune.json").read_text())
    assert info["resumed_from_step"] >= saved[-1] > 0  # continued, not started over
    assert info["processes"] == 2 and info["per_process"] == {"batch_size": 2, "grad_accum": 1}
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    ref_log = [json.loads(line) for line in (ref / "metrics.jsonl").read_text().splitlines()]
    cut_log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in cut_log] == list(range(1, STEPS + 1))  # logged once, by one process
    assert [r["loss"] for r in cut_log] == [r["loss"] for r in ref_log]
    assert not out.with_name("cut.run").exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the training processes through /proc (Linux)")
def test_a_launch_ends_with_the_kernel_that_started_it(exp, tmp_path):
    """The notebook's kernel killed mid-run: the launcher and its training processes end too (none goes on writing
    checkpoints beside a rerun)."""
    out = tmp_path / "orphan"
    run = tmp_path / "orphan.json"
    run.write_text(json.dumps({"data_root": str(exp.root.path), "base_model": str(exp.base_model(0)),
                               "out_dir": str(out), "train": {**TRAIN, "max_steps": 100000, "checkpoint_every": 1},
                               "model": MODEL, "global_batch": True}))
    kernel = ("from hacalib.launch import run_launched\n"
              f"run_launched('hacalib.training.cli', ['--config', {str(run)!r}, '--no-progress'], num_processes=2, "
              f"log={str(tmp_path / 'launch.log')!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", kernel], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = out.with_name("orphan.run") / "checkpoints"
    try:
        t0 = time.monotonic()
        while not (ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir())):
            assert proc.poll() is None, f"ended (rc {proc.returncode}) before its first checkpoint"
            assert time.monotonic() - t0 < 300, "no checkpoint within 300 s"
            time.sleep(0.05)
        tree = _descendants(proc.pid)
        assert len(tree) >= 3  # the launcher and two training processes
    finally:
        proc.kill()  # SIGKILL to the "kernel" only
        proc.wait(timeout=60)
    t0 = time.monotonic()
    while any(_alive(pid) for pid in tree):
        assert time.monotonic() - t0 < 60, f"still running 60 s after the kernel was killed: {tree}"
        time.sleep(0.1)


@pytest.mark.slow
def test_experiment_launches_a_run_and_reads_it_as_an_in_process_one(exp):
    two = Experiment(**{**exp.launch_fields(), "seeds": (0,), "base_seeds": (0,)}, num_processes=2)
    run = two.finetuned("entail", 0)
    info = json.loads((run / "finetune.json").read_text())
    assert info["processes"] == 2 and info["resumed_from_step"] == 0
    # the same cache key as a one-process run: the one-process experiment takes it as finished
    import hacalib.training.finetune as finetune_mod

    before = finetune_mod.train
    finetune_mod.train = lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained again"))
    try:
        assert exp.finetuned("entail", 0) == run
    finally:
        finetune_mod.train = before


# ---------------------------------------------------------------------------------------------- haca reproduce
@pytest.mark.slow
def test_reproduce_smoke_with_two_processes_writes_the_one_process_csvs_and_tables(tmp_path):
    """Notebook 03 on one base model and seed: one process first (training the runs), then, with the per-item results
    removed and the runs kept (a finished run is never trained again), two processes."""
    from hacalib.reproduce import ReproduceConfig, reproduce

    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    cfg = dict(project_root=tmp_path, smoke=True, only=["03"], seeds=[0], base_seeds=[0], families=["video_llava"])
    quiet = lambda *a, **k: None  # noqa: E731
    reproduce(ReproduceConfig(**cfg), log=quiet)
    run_root = tmp_path / "runs" / "smoke"
    results = sorted((run_root / "cache").glob("**/eval/*.csv"))
    # pretrained, entail, haca, haca_mask on VELOCITI; the base model's three perception readouts (the claims' gate)
    assert len(results) == 4 + 3
    one = {p: p.read_bytes() for p in results}
    tables = {p.name: p.read_bytes() for p in (run_root / "figures").glob("*.csv")}
    for p in results:
        p.unlink()

    reproduce(ReproduceConfig(**cfg, num_processes=2), log=quiet)
    assert {p: p.read_bytes() for p in results} == one
    assert {p.name: p.read_bytes() for p in (run_root / "figures").glob("*.csv")} == tables
    prov = json.loads(next((run_root / "figures").glob("03_table1_velociti.provenance.json")).read_text())
    assert prov["config"]["num_processes"] == 2 and prov["experiments"]["video_llava"]["num_processes"] == 2
