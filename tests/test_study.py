"""The model family as a study axis: presets per family, a study of one experiment per family, checked settings."""

from __future__ import annotations

from dataclasses import fields

import pytest

from hacalib.config import PretrainConfig
from hacalib.errors import UsageError
from hacalib.experiment import Experiment
from hacalib.presets import PRESET_FAMILIES, preset
from hacalib.reproduce import ReproduceConfig, notebook_parameters, validate
from hacalib.study import Study, resolve_families
from hacalib.training.pretrain import VIDEOCHAT2_ONLY_FIELDS, key_config


def test_the_toy_preset_has_both_families_and_each_paper_preset_one():
    assert resolve_families("toy", None) == ("video_llava", "videochat2")
    assert resolve_families("toy", ["videochat2"]) == ("videochat2",)
    assert resolve_families("videochat2-7b", None) == ("videochat2",)
    for bad in (["video_llava", "video_llava"], ["videochat"], []):
        with pytest.raises(ValueError, match="families must be distinct names"):
            resolve_families("toy", bad)
    with pytest.raises(ValueError, match="videollava-7b"):
        resolve_families("videollava-7b", ["videochat2"])
    assert set(PRESET_FAMILIES) == {"toy", "videollava-7b", "videochat2-7b"}


def test_the_toy_families_share_the_recipe_and_differ_in_architecture():
    llava, chat2 = preset("toy", family="video_llava"), preset("toy", family="videochat2")
    assert (llava.family, chat2.family) == ("video_llava", "videochat2")
    assert chat2.pretrain.family == "videochat2" and llava.pretrain.family == "video_llava"
    same = [f.name for f in fields(PretrainConfig) if f.name not in VIDEOCHAT2_ONLY_FIELDS]
    assert all(getattr(llava.pretrain, n) == getattr(chat2.pretrain, n) for n in same)
    assert llava.finetune == chat2.finetune and llava.model == chat2.model and llava.base_seeds == chat2.base_seeds
    # Video-LLaVA's recipe is recorded (and keyed) without the second family's fields: the bases shipped before it fit
    assert set(key_config(llava.pretrain)) == {f.name for f in fields(PretrainConfig)} - set(VIDEOCHAT2_ONLY_FIELDS)
    assert key_config(chat2.pretrain)["family"] == "videochat2"


def test_the_videochat2_paper_preset_takes_the_converted_folder():
    chat2 = preset("videochat2-7b")
    assert chat2.family == "videochat2" and chat2.pretrain is None and chat2.base_model == ""
    assert (chat2.model.lora_r, chat2.model.lora_alpha, chat2.model.lora_dropout) == (16, 32, 0.1)  # its stage 3
    assert chat2.finetune == preset("videollava-7b").finetune  # HACA's recipe for both paper models
    with pytest.raises(ValueError, match="needs model_path"):
        Experiment(preset="videochat2-7b", data_root="/data")
    exp = Experiment(preset="videochat2-7b", data_root="/data", model_path="/models/videochat2")
    assert exp.base_model() == "/models/videochat2" and exp.launch_fields()["model_path"] == "/models/videochat2"
    with pytest.raises(ValueError, match="model_path is for a paper preset"):
        Experiment(preset="toy", model_path="/models/videochat2")


def test_a_second_family_gets_its_own_folders_and_the_first_keeps_its_own(tmp_path):
    llava = Experiment(preset="toy", cache_dir=str(tmp_path))
    chat2 = Experiment(preset="toy", cache_dir=str(tmp_path), family="videochat2")
    assert llava.family == "video_llava" and llava.tag == "toy-full-world0"  # the name it had before (caches stay)
    assert chat2.tag == "toy-full-world0-videochat2"
    assert llava.run_path("haca", 0) != chat2.run_path("haca", 0) and llava.base_path(0) != chat2.base_path(0)
    study = Study.of(preset="toy", cache_dir=str(tmp_path), seeds=(0,))
    assert study.families == ["video_llava", "videochat2"] and study["videochat2"].seeds == (0,)


def test_reproduce_checks_families_and_the_model_path(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "03_table1_velociti.ipynb").write_text("{}")
    with pytest.raises(UsageError, match="--families"):
        validate(ReproduceConfig(project_root=tmp_path, families=["videochat3"]))
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(UsageError, match="needs --model-path"):
        validate(ReproduceConfig(project_root=tmp_path, preset="videochat2-7b", data_root=str(data)))
    with pytest.raises(UsageError, match="--model-path is for a paper preset"):
        validate(ReproduceConfig(project_root=tmp_path, model_path=str(data)))
    with pytest.raises(UsageError, match="is not a folder"):
        validate(ReproduceConfig(project_root=tmp_path, preset="videochat2-7b", data_root=str(data),
                                 model_path=str(tmp_path / "absent")))
    hub = notebook_parameters(ReproduceConfig(project_root=tmp_path, preset="videollava-7b", data_root=str(data),
                                              model_path="someone/Video-LLaVA-7B-variant"))
    assert hub["model_path"] == "someone/Video-LLaVA-7B-variant"  # a hub id stays as it is
    params = notebook_parameters(ReproduceConfig(project_root=tmp_path, families=["videochat2"]))
    assert params["families"] == ["videochat2"] and params["model_path"] == ""
    assert notebook_parameters(ReproduceConfig(project_root=tmp_path))["families"] is None  # the notebooks' default


def test_a_prompt_option_another_family_cannot_take_is_refused_at_once():
    with pytest.raises(ValueError, match="takes only 'haca'"):
        Experiment(preset="videochat2-7b", data_root="/data", model_path="/m", prompt="velociti_v1")
    exp = Experiment(preset="videollava-7b", data_root="/data", prompt="velociti_v1")
    assert exp.prompt == "velociti_v1"
