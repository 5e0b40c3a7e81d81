"""bench/train_loop.py: the real training loop at the small shape, packed and padded, reports the JSON contract."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "train_loop.py"


def test_small_run_trains_both_modes_and_prints_one_json_line_last(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_train_loop", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--steps", "3", "--batch", "2", "--out", str(tmp_path)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    for mode, rows in (("packed", 2), ("padded", 6)):
        got = result["modes"][mode]
        assert got["rows_per_step"] == rows and got["examples_per_step"] == 6  # 2 videos x 3 HACA-mask targets
        assert len(got["losses"]) == 3 and all(x > 0 for x in got["losses"])
        assert got["examples_per_s"] > 0
        assert (tmp_path / mode / "final" / "adapter_config.json").is_file()  # the loop saved its adapter
