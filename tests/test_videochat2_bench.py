"""bench/videochat2.py: a small run prints the JSON contract; packed and one-per-pair agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "videochat2.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_videochat2", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_small_run_prints_one_json_line_last(capsys):
    result = _bench().main(["--videos", "2", "--captions", "3", "--frames", "8", "--repeats", "1"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["pairs"] == 6 and result["targets"] == 6 and result["bench"] == "videochat2"
    assert result["max_abs_diff"] < 1e-5 and result["train_loss_abs_diff"] < 1e-5  # float32 on the CPU
    for key in ("baseline_per_s", "improved_per_s", "train_baseline_per_s", "train_improved_per_s"):
        assert result[key] > 0


def test_the_7b_shape_is_videochat2_mistral_7b():
    """Built on the meta device (no memory): the GPU run's model has the paper model's size."""
    model, proc = _bench().build_7b("meta")
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    assert 7.5 < billions < 7.8 and proc.num_video_tokens == 96  # Mistral 7.24B + UMT-L 0.29B + Q-Former 0.1B
    assert model.language_model.config.num_key_value_heads == 8
