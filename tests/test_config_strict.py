"""Issue 30: a training config's mistakes are one line naming the field, never a traceback, and numbers are strict
(no NaN, no infinity, no fractional counts)."""

import json
import math
import subprocess
import sys

import pytest

from hacalib.config import ConfigError, ModelConfig, TrainConfig, from_mapping


@pytest.mark.parametrize("field,value", [("lr", math.nan), ("lr", math.inf), ("lr", -1e-3), ("max_steps", 2.5),
                                         ("batch_size", 1.5), ("seed", "3"), ("packed", 1), ("objective", 3)])
def test_impossible_values_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}"):
        TrainConfig(**{field: value})


def test_numpy_integers_and_whole_floats_where_floats_are_meant_pass():
    np = pytest.importorskip("numpy")
    cfg = TrainConfig(max_steps=np.int64(5), lr=1, mask_ratio=np.float64(0.3))
    assert cfg.max_steps == 5 and cfg.lr == 1


def test_from_mapping_names_the_file_and_the_unknown_or_bad_field():
    with pytest.raises(ConfigError, match=r"run\.json, train: unknown TrainConfig field\(s\) \['lr_rate'\]"):
        from_mapping(TrainConfig, {"lr_rate": 1e-3}, "run.json, train")
    with pytest.raises(ConfigError, match=r"run\.json, model: .*must be a JSON object.*got list"):
        from_mapping(ModelConfig, [1, 2], "run.json, model")
    with pytest.raises(ConfigError, match=r"run\.json, train: TrainConfig\.lr must be"):
        from_mapping(TrainConfig, {"lr": -1}, "run.json, train")


def _cli(tmp_path, run) -> subprocess.CompletedProcess:
    path = tmp_path / "run.json"
    path.write_text(run if isinstance(run, str) else json.dumps(run))
    return subprocess.run([sys.executable, "-m", "hacalib.training.cli", "--config", str(path), "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("run,expect", [
    ({"train": {"lr_rate": 1e-3}}, "unknown TrainConfig field(s) ['lr_rate']"),
    ({"train": {"lr": -1.0}}, "TrainConfig.lr must be"),
    ({"train": {"max_steps": 2.5}}, "TrainConfig.max_steps must be"),
    ([1, 2], "must be a JSON object"),
    ('{"train": {"lr": 1e-3,}', "malformed JSON at line 1"),
    ({"train": {}, "data_root": "missing-root", "base_model": "b", "out_dir": "o", "colour": 1},
     "unknown run file key(s) ['colour']"),
    ({"train": {}, "data_root": "missing-root", "base_model": "b", "out_dir": "o"}, "missing-root"),
])
def test_training_cli_mistakes_are_one_line(tmp_path, run, expect):
    proc = _cli(tmp_path, run)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert expect in proc.stderr and proc.stderr.startswith("hacalib.training.cli: error: ")
