"""Shipped toy base models: used when they fit the world and recipe, checked against their sha256, rebuilt on demand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hacalib.training.bases as bases
from hacalib.errors import DataError
from hacalib.experiment import Experiment
from hacalib.training.pretrain import cache_key


def _haca_pretrain(cache: Path, seeds: str) -> dict[int, Path]:
    # In a fresh process, as a user runs it: torch.set_num_threads (which conftest calls) changes the rounding of
    # some CPU kernels even when it sets the thread count torch already had, so in-process results differ.
    proc = subprocess.run([sys.executable, "-m", "hacalib.cli", "pretrain", "--smoke", "--base-seeds", seeds,
                           "--cache-dir", str(cache), "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln.split(": ", 1) for ln in proc.stdout.strip().splitlines() if ln.startswith("base model ")]
    return {int(k.split()[-1]): Path(v) for k, v in lines}


@pytest.fixture(scope="module")
def smoke_bases(tmp_path_factory):
    """Two smoke base models pretrained by `haca pretrain` (seeds 0 and 1), shipped into a temporary root."""
    cache = tmp_path_factory.mktemp("cache")
    exp = Experiment(preset="toy", smoke=True, cache_dir=str(cache), base_seeds=(0, 1), retrain_base=True)
    root = tmp_path_factory.mktemp("shipped")
    trained = _haca_pretrain(cache, "0,1")
    assert trained == {b: Path(exp.base_model(b)) for b in exp.base_seeds}  # the paths the experiment uses
    for b, path in trained.items():
        bases.ship_base(path, b, {"made_by": "test"}, root=root)
    return exp, trained, root


@pytest.mark.slow
def test_a_shipped_base_is_used_instead_of_pretraining(smoke_bases, tmp_path, monkeypatch):
    exp, trained, root = smoke_bases
    assert bases.shipped_seeds(root=root) == [0, 1]
    monkeypatch.setattr(bases, "SHIPPED_ROOT", root)
    import hacalib.training.pretrain as pretrain

    def no_training(*args, **kwargs):
        raise AssertionError("pretrained although a shipped base fits")

    monkeypatch.setattr(pretrain, "train", no_training)
    fresh = Experiment(preset="toy", smoke=True, cache_dir=str(tmp_path / "cache"), base_seeds=(0, 1))
    for b in (0, 1):
        got = Path(fresh.base_model(b))
        assert got != trained[b] and "retrained" not in got.name
        assert (got / "model.safetensors").read_bytes() == (trained[b] / "model.safetensors").read_bytes()
    assert (Path(fresh.base_model(0)) / "model.safetensors").read_bytes() != \
        (Path(fresh.base_model(1)) / "model.safetensors").read_bytes()  # two seeds, two models


@pytest.mark.slow
def test_an_altered_shipped_file_is_named_and_another_key_is_not_used(smoke_bases, tmp_path):
    exp, trained, root = smoke_bases
    key = cache_key(json_config(trained[0]), exp.root.path)
    assert bases.install_shipped_base(0, key, tmp_path / "ok", root=root)
    assert not bases.install_shipped_base(0, "another-world-or-recipe", tmp_path / "no", root=root)
    assert not (tmp_path / "no").exists()
    model = bases.shipped_dir(0, root=root) / "model.safetensors"
    original = model.read_bytes()
    try:
        model.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(DataError, match="model.safetensors.*sha256 differs"):
            bases.install_shipped_base(0, key, tmp_path / "bad", root=root)
        assert not (tmp_path / "bad").exists()
    finally:
        model.write_bytes(original)


def json_config(trained: Path):
    from hacalib.config import PretrainConfig

    return PretrainConfig(**json.loads((trained / "pretrain.json").read_text())["config"])


@pytest.mark.slow
def test_haca_pretrain_rebuilds_the_same_base_on_this_machine(smoke_bases, tmp_path):
    exp, trained, root = smoke_bases
    rebuilt = _haca_pretrain(tmp_path / "c", "1")[1]
    assert (rebuilt / "model.safetensors").read_bytes() == (trained[1] / "model.safetensors").read_bytes()


def test_ship_refuses_the_smoke_recipe():
    proc = subprocess.run([sys.executable, "-m", "hacalib.cli", "pretrain", "--smoke", "--ship"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "drop --smoke or --ship" in proc.stderr


@pytest.mark.parametrize("family", ["video_llava", "videochat2"])
def test_the_shipped_bases_are_intact(family):
    """Every base model of each toy family in hacalib/bases/ matches its SHA256SUMS, the preset's base seeds are all
    there, and each was made with the preset's recipe (so it is used, not retrained)."""
    from dataclasses import replace

    from hacalib.presets import family_slug, preset
    from hacalib.training.pretrain import key_config

    chosen = preset("toy", family=family)
    shipped = bases.shipped_seeds(family_slug(family))
    assert set(chosen.base_seeds) <= set(shipped), f"shipped {family} base seeds {shipped}"
    for seed in shipped:
        folder = bases.shipped_dir(seed, family_slug(family))
        bases.verify(folder)
        info = json.loads((folder / "pretrain.json").read_text())
        assert info["config"] == key_config(replace(chosen.pretrain, seed=seed))
