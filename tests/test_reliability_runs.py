"""Interrupted and diverging runs on the smoke toy world: a real SIGKILL mid-training and mid-scoring, restarts that
end bit-identical to uninterrupted runs, leftovers that are never trusted, and a NaN that stops training.

The killed jobs run in subprocesses (`python -m hacalib.training.cli`, a scoring script) with one torch thread each, so the
reference and the interrupted run do the same float operations in the same order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from hacalib.config import ModelConfig, TrainConfig
from hacalib.models import build_toy_model, save_model
from hacalib.toyworld import build_world, word_class
from hacalib.training.finetune import MARKER, finetune
from hacalib.training.loop import TrainingDiverged
from hacalib.training.masking import WordClassTagger
from hacalib.training.pretrain import toy_vocabulary

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 20, 5
TRAIN = {"max_steps": STEPS, "batch_size": 4, "warmup_steps": 2, "lr": 2e-3, "log_every": 1,
         "checkpoint_every": EVERY, "keep_checkpoints": 2}
MODEL = {"preset": "toy", "dtype": "float32", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}




@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    build_world(out, size="smoke", seed=0)
    return out


@pytest.fixture(scope="module")
def base(world, tmp_path_factory) -> Path:
    model, processor = build_toy_model(toy_vocabulary(world), seed=0)
    return save_model(model, processor, tmp_path_factory.mktemp("base") / "toy")


def _env() -> dict:
    # the child's torch uses one thread, as the parent's reference would; nothing else changes
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _train_cmd(world: Path, base: Path, out: Path, tmp: Path) -> list[str]:
    run = tmp / f"{out.name}.json"
    run.write_text(json.dumps({"data_root": str(world), "base_model": str(base), "out_dir": str(out),
                               "train": {**TRAIN, "objective": "haca", "seed": 0}, "model": MODEL}))
    return [sys.executable, "-m", "hacalib.training.cli", "--config", str(run), "--no-progress"]


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before the condition was met: "
                                 f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_sigkill_mid_training_resumes_to_the_same_adapter(world, base, tmp_path):
    # the uninterrupted reference runs here, in this process (one thread, as the children)
    ref = finetune(base, world, TrainConfig(**TRAIN, objective="haca", seed=0), ModelConfig(**MODEL), tmp_path / "ref",
                   tagger=WordClassTagger(word_class), progress=False)

    out = tmp_path / "cut"
    ckpts = out.with_name("cut.run") / "checkpoints"
    proc = subprocess.Popen(_train_cmd(world, base, out, tmp_path), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _wait_for(lambda: ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir()), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # killed mid-run: nothing a later run would take for a result, only checkpoints to resume from
    assert not out.exists()
    done = sorted(int(p.name[5:]) for p in ckpts.iterdir() if p.name.startswith("step_"))
    assert done and done[-1] < STEPS

    subprocess.run(_train_cmd(world, base, out, tmp_path), env=_env(), check=True, capture_output=True, timeout=300)
    info = json.loads((out / MARKER).read_text())
    assert info["resumed_from_step"] >= done[-1] > 0  # it continued, it did not start over
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    ref_log = [json.loads(line) for line in (ref / "metrics.jsonl").read_text().splitlines()]
    cut_log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in cut_log] == list(range(1, STEPS + 1))  # no step logged twice or lost
    assert [r["loss"] for r in cut_log] == [r["loss"] for r in ref_log]
    assert not out.with_name("cut.run").exists()  # the checkpoints are cleaned up once the adapter is in place


def test_an_unfinished_output_folder_is_not_trusted(world, base, tmp_path):
    """A folder without the finished-run marker (or with another run's marker) is trained again and replaced."""
    cfg = TrainConfig(**{**TRAIN, "max_steps": 3, "checkpoint_every": 1000}, objective="entail", seed=0)
    out = tmp_path / "run"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"half a file")
    run = lambda c: finetune(base, world, c, ModelConfig(**MODEL), out,  # noqa: E731
                             tagger=WordClassTagger(word_class), progress=False)
    run(cfg)
    first = (out / "adapter_model.safetensors").read_bytes()
    assert first != b"half a file" and json.loads((out / MARKER).read_text())["resumed_from_step"] == 0
    run(TrainConfig(**{**TRAIN, "max_steps": 3, "checkpoint_every": 1000}, objective="entail", seed=1))
    assert (out / "adapter_model.safetensors").read_bytes() != first  # another key: trained again, replaced
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_nan_loss_stops_finetune_naming_the_step_and_writes_no_adapter(world, base, tmp_path):
    """A base model with a non-finite weight (a damaged download) makes the loss NaN: training stops at once."""
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad-base"
    shutil.copytree(base, bad)
    weights = load_file(bad / "model.safetensors")
    name = next(k for k in weights if k.endswith("lm_head.weight") or k.endswith("embed_tokens.weight"))
    weights[name][:, 0] = float("inf")
    save_file(weights, bad / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "run"
    cfg = TrainConfig(**{**TRAIN, "max_steps": 4, "checkpoint_every": 1000}, objective="haca", seed=0)
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at step 1 \(lr"):
        finetune(bad, world, cfg, ModelConfig(**MODEL), out, tagger=WordClassTagger(word_class), progress=False)
    assert not out.exists()
    run_dir = out.with_name("run.run")
    assert not (run_dir / "final").exists() and not (run_dir / "checkpoints").exists()


SCORE_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from hacalib.data import load_velociti
    from hacalib.models import load_model
    from hacalib.scoring.requests import ScoreRequest
    from hacalib.scoring.results_file import score_to_file

    torch.set_num_threads(1)
    world, base, out, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    class SlowDecode(dict):
        # stands in for slow video decoding, so a kill lands between videos
        def __setitem__(self, key, value):
            time.sleep(delay)
            print("decoded", key, flush=True)
            super().__setitem__(key, value)

    items = load_velociti(world + "/velociti", video_root=world + "/velociti/videos")  # as the reference
    requests = [ScoreRequest(it.video_path, cap) for it in items for cap in (it.pos, it.neg)]
    model, processor = load_model(base, dtype="float32")
    score_to_file(model, processor, requests, out, batch_size=1, video_cache=SlowDecode())
""")


def test_sigkill_mid_scoring_resumes_from_the_last_completed_video(world, base, tmp_path):
    script = tmp_path / "score.py"
    script.write_text(SCORE_SCRIPT)
    ref = tmp_path / "ref.csv"
    # the uninterrupted reference, here in this process (one thread, as the children)
    from hacalib.data import load_velociti
    from hacalib.models import load_model
    from hacalib.scoring.requests import ScoreRequest
    from hacalib.scoring.results_file import score_to_file

    items = load_velociti(world / "velociti", video_root=world / "velociti" / "videos")
    requests = [ScoreRequest(it.video_path, cap) for it in items for cap in (it.pos, it.neg)]
    score_to_file(*load_model(base, dtype="float32"), requests, ref, batch_size=1)
    per_video = Counter(line.split(",")[1] for line in ref.read_text().splitlines()[1:])
    n_videos = len(per_video)

    def complete(path: Path) -> set[str]:
        rows = Counter(line.split(",")[1] for line in path.read_text().splitlines()[1:] if line.count(",") >= 3)
        return {v for v, n in rows.items() if n == per_video[v]}

    out = tmp_path / "cut.csv"
    proc = subprocess.Popen([sys.executable, str(script), str(world), str(base), str(out), "0.2"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: out.is_file() and len(complete(out)) >= 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = complete(out)
    assert 3 <= len(kept) < n_videos

    again = subprocess.run([sys.executable, str(script), str(world), str(base), str(out), "0"], env=_env(),
                           check=True, capture_output=True, timeout=300, text=True)
    decoded = [line.split()[1] for line in again.stdout.splitlines() if line.startswith("decoded")]
    assert not set(decoded) & kept  # finished videos are not scored again
    assert len(decoded) == n_videos - len(kept)
    assert out.read_bytes() == ref.read_bytes()
