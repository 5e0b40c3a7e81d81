"""bench/scoring.py: a tiny run prints the JSON contract; the 7B shape is right (built on the meta device)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scoring.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scoring", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_small_run_prints_one_json_line_last(bench, capsys):
    result = bench.main(["--videos", "2", "--captions", "3", "--repeats", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    for key in ("bench", "device", "baseline_per_s", "improved_per_s", "speedup", "max_abs_diff"):
        assert key in result
    assert result["pairs"] == 6 and result["bench"] == "scoring"
    assert result["max_abs_diff"] < 1e-5 and result["max_abs_diff_batched_naive"] < 1e-5
    assert result["speedup"] == pytest.approx(result["improved_per_s"] / result["baseline_per_s"])
    assert result["max_abs_diff_cascade"] < 1e-5
    assert result["cascade_vs_packed"] == pytest.approx(result["cascade_per_s"] / result["improved_per_s"])


def test_several_batch_sizes_time_packed_and_cascade_at_each(bench, capsys):
    result = bench.main(["--videos", "3", "--captions", "2", "--repeats", "1", "--skip-batched-naive",
                         "--packed-batch", "1,2"])
    assert sorted(result["by_batch"]) == ["1", "2"] and result["videos_per_forward"] == 1
    for row in result["by_batch"].values():
        assert row["max_abs_diff_packed"] < 1e-5 and row["max_abs_diff_cascade"] < 1e-5
        assert row["cascade_vs_packed"] == pytest.approx(row["cascade_per_s"] / row["packed_per_s"])
    assert result["by_batch"]["1"]["packed_per_s"] == result["improved_per_s"]
    assert "(2 videos a forward)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--packed-batch", "1,x"])


def test_7b_shape_on_meta_device(bench):
    model, processor = bench.build_7b("meta")
    n = sum(p.numel() for p in model.parameters())
    # Llama-7B (6.74B with a 32,064 vocab) + two CLIP ViT-L/14 towers (image and video, 0.30B each) + projector
    assert 7.3e9 < n < 7.45e9, n
    assert next(model.parameters()).device.type == "meta"
    from hacalib.models import num_video_tokens

    assert num_video_tokens(processor, 8) == 2056
    text = model.config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size, text.vocab_size) == (32, 4096, 11008, 32064)
