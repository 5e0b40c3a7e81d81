"""bench/training.py: a short small-shape run prints the JSON contract with equal losses and gradients."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "training.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_small_run_prints_one_json_line_last(bench, capsys):
    result = bench.main(["--videos", "2", "--videos-per-step", "1", "--repeats", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    for key in ("bench", "device", "baseline_per_s", "improved_per_s", "speedup", "max_abs_diff"):
        assert key in result
    assert result["bench"] == "training" and result["targets"] == 6
    # float32 on the CPU: packed and separate sequences give the same losses and LoRA gradients
    assert result["max_abs_diff"] < 1e-5 and result["max_abs_diff_cached"] < 1e-5
    assert result["grad_rel_diff"] < 1e-5 and result["grad_rel_diff_cached"] < 1e-5
    assert result["vision_tower_videos_cached"] == 2  # warm-up filled the cache; timed passes never ran the tower
    tokens = result["lm_positions_per_pass"]
    assert tokens["improved"] < 0.7 * tokens["baseline"]  # the 136-token video prefix once instead of 3 times
    assert result["speedup"] == pytest.approx(result["improved_per_s"] / result["baseline_per_s"])


def test_baseline_micro_batches_accumulate_to_the_same_loss(bench):
    one = bench.main(["--videos", "2", "--videos-per-step", "2", "--repeats", "1", "--baseline-batch", "1"])
    assert one["max_abs_diff"] < 1e-5 and one["grad_rel_diff"] < 1e-5
    assert "1 sequences per forward" in one["baseline"]


def test_a_lora_step_is_counted_without_weight_gradients_for_frozen_weights(bench):
    model, _, _ = bench.lora_model("small", r=4)
    n_params, n_lora = bench.lm_params(model)
    lm = model.get_base_model().model.language_model
    by_hand = sum(p.numel() for name, p in lm.named_parameters() if "lora_" in name)
    assert n_lora == by_hand > 0 and n_lora < n_params
    # forward + input gradients (4NT) plus the adapters' own weight gradients; never full fine-tuning's 6NT
    assert bench.lora_step_flops(n_params, n_lora, 100) == 4 * n_params * 100 + 2 * n_lora * 100
    assert bench.lora_step_flops(n_params, n_lora, 100) < 6 * n_params * 100
