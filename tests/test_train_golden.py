"""Golden run: fixed seed, a few dozen steps of the real toy model on the smoke world, per-step losses
compared with a committed reference (tests/golden/train_smoke.json, with the environment that produced it).

Two stages, both through `hacalib.training.loop.train`: toy pretraining (all parameters) and HACA LoRA
fine-tuning of that model. Regenerate the reference after an intended change with
`python tests/test_train_golden.py` and commit it together with the change that moved it.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from hacalib.config import ModelConfig, PretrainConfig, TrainConfig
from hacalib.training.metrics_log import read_metrics

GOLDEN = Path(__file__).parent / "golden" / "train_smoke.json"
WORLD = {"size": "smoke", "seed": 0}
PRETRAIN = PretrainConfig(seed=0, steps=24, batch_size=4, lr=3e-3, warmup_steps=4, log_every=1, checkpoint_every=1000)
FINETUNE = dict(objective="haca", seed=0, max_steps=12, batch_size=4, lr=2e-3, warmup_steps=2, log_every=1,
                checkpoint_every=1000)
LORA = dict(lora_r=8, lora_alpha=16, lora_dropout=0.05)
# Same machine and software reproduce the losses bit for bit; other CPUs (AVX2 vs AVX-512 kernels) and
# thread counts sum in a different order, and the difference grows over the steps.
RTOL, ATOL = 1e-3, 1e-3  # 1 vs 2 threads here: max difference 2.4e-7


def environment() -> dict:
    import accelerate
    import torch
    import transformers

    return {
        "python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
        "accelerate": accelerate.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
    }


def golden_run(tmp: Path) -> dict:
    """Build the smoke world, pretrain, fine-tune; return both stages' per-step losses."""
    import torch

    from hacalib.toyworld import build_world, word_class
    from hacalib.training.finetune import finetune
    from hacalib.training.masking import WordClassTagger
    from hacalib.training.pretrain import pretrain_toy_model

    world = tmp / "world"
    build_world(world, **WORLD)
    base = pretrain_toy_model(world, tmp / "base", PRETRAIN, progress=False)
    torch.manual_seed(0)  # the LoRA init comes from the global RNG
    adapter = finetune(base, world, TrainConfig(**FINETUNE), ModelConfig(**LORA), tmp / "haca",
                       tagger=WordClassTagger(word_class), progress=False)
    return {
        "pretrain_losses": [r["loss"] for r in read_metrics(base / "metrics.jsonl")],
        "finetune_losses": [r["loss"] for r in read_metrics(adapter / "metrics.jsonl")],
    }


@pytest.mark.slow
def test_golden_losses(tmp_path):
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} missing: run `python tests/{Path(__file__).name}` to create it")
    ref = json.loads(GOLDEN.read_text())
    got = golden_run(tmp_path)
    where = (f"reference made with {ref['environment']}, now {environment()}. If the world, tokenizer, model or "
             f"loop changed on purpose, regenerate: python tests/{Path(__file__).name}")
    for stage in ("pretrain_losses", "finetune_losses"):
        assert len(got[stage]) == len(ref[stage]), stage
        np.testing.assert_allclose(got[stage], ref[stage], rtol=RTOL, atol=ATOL, err_msg=f"{stage}; {where}")
    # and the run learned something: the golden reference is not a flat line
    assert np.mean(ref["pretrain_losses"][-4:]) < np.mean(ref["pretrain_losses"][:4]) - 0.5


if __name__ == "__main__":
    import tempfile

    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        losses = golden_run(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    from hacalib.io import write_json

    write_json(GOLDEN, {"world": WORLD, "pretrain": PRETRAIN.__dict__, "finetune": FINETUNE, "lora": LORA,
                        "tolerance": {"rtol": RTOL, "atol": ATOL}, "environment": environment(), **losses})
    print(json.dumps(losses))
