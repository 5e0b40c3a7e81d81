"""Issue 30: a finished run's folder records the sha256 of every file it holds; a file cut short or altered later
makes the run unfinished (rebuilt), and a weights file that cannot be read is one line naming it."""

import json

import pytest

from hacalib.training.loop import TrainResult
from hacalib.training.runs import finish_run, is_finished


def _finished(tmp_path):
    work = tmp_path / "out.run"
    work.mkdir()
    (work / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    result = TrainResult(output_dir=work, final_dir=work / "final", start_step=0, steps=1, losses=[1.0],
                         wall_seconds=0.1, samples_per_second=1.0)

    def write(tmp):
        (tmp / "adapter_model.safetensors").write_bytes(b"weights" * 100)

    return finish_run(tmp_path / "out", result, "finished.json", lambda records: {"cache_key": "k"}, write)


def test_a_run_records_its_files_and_a_cut_file_unfinishes_it(tmp_path):
    out = _finished(tmp_path)
    record = json.loads((out / "finished.json").read_text())
    assert set(record["files"]) == {"adapter_model.safetensors", "metrics.jsonl"}
    assert is_finished(out, "finished.json", "k")
    weights = out / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a half-truncated copy
    with pytest.warns(UserWarning, match=r"adapter_model\.safetensors.*differs from its record"):
        assert not is_finished(out, "finished.json", "k")


def test_a_run_from_before_records_is_still_finished(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "finished.json").write_text(json.dumps({"cache_key": "k"}))
    assert is_finished(out, "finished.json", "k")


def test_an_unreadable_adapter_is_one_line_naming_it(tmp_path):
    import torch

    from hacalib.errors import DataError
    from hacalib.models.lora import load_adapter

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "target_modules": ["l"]}))
    (folder / "adapter_model.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    model = torch.nn.Sequential()
    model.add_module("l", torch.nn.Linear(2, 2))
    with pytest.raises(DataError, match=r"adapter.*cannot be read"):
        load_adapter(model, folder)
