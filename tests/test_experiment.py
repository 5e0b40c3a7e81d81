"""The cached experiment on the smoke toy world: runs train once, per-item results are scored once."""

from __future__ import annotations

import json

import pytest

import hacalib.training.finetune as finetune_mod
from hacalib.experiment import Experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return Experiment(preset="toy", cache_dir=str(tmp_path_factory.mktemp("cache")), seeds=(0,), smoke=True)


def test_objectives_train_on_the_same_videos_and_runs_are_cached(exp, monkeypatch):
    infos = {}
    for objective in ("entail", "haca", "haca_mask"):
        run = exp.finetuned(objective, 0)
        infos[objective] = json.loads((run / "finetune.json").read_text())
        assert (run / "adapter_model.safetensors").is_file()
    assert len({info["videos"] for info in infos.values()}) == 1
    assert infos["entail"]["examples"] == infos["haca"]["examples"]
    assert infos["haca_mask"]["examples"]["mask"] == infos["haca"]["examples"]["pos"]

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(finetune_mod, "train", no_training)
    assert exp.finetuned("haca", 0) == exp.finetuned("haca", 0)


def test_a_different_configuration_is_a_different_run(exp):
    a = exp.finetuned("haca", 0)
    b = exp.finetuned("haca", 0, loss_reduction="sequence")
    assert a != b
    ka = json.loads((a / "finetune.json").read_text())["cache_key"]
    kb = json.loads((b / "finetune.json").read_text())["cache_key"]
    assert ka != kb


def test_per_item_results_are_computed_once(exp, monkeypatch):
    first = exp.per_item("velociti", "haca", 0)
    assert {"test", "p_pos", "p_neg"} <= set(first.columns)
    assert first["p_pos"].between(0, 1).all()
    fresh = Experiment(preset="toy", cache_dir=exp.cache_dir, seeds=(0,), smoke=True)
    monkeypatch.setattr(fresh, "model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    again = fresh.per_item("velociti", "haca", 0)
    assert again[["p_pos", "p_neg"]].equals(first[["p_pos", "p_neg"]])


def test_the_same_seed_gives_the_same_adapter(exp, tmp_path):
    other = Experiment(preset="toy", cache_dir=str(tmp_path), seeds=(0,), smoke=True)
    # same world and base model (copied cache), fresh fine-tuning run
    import shutil
    from pathlib import Path

    for sub in ("toyworld", "models"):
        shutil.copytree(Path(exp.cache_dir) / sub, tmp_path / sub)
    a = exp.finetuned("entail", 0) / "adapter_model.safetensors"
    b = other.finetuned("entail", 0) / "adapter_model.safetensors"
    assert a.read_bytes() == b.read_bytes()


def test_caption_loglik_readout_scores_each_pair_on_its_video_and_on_another(exp):
    import numpy as np

    from hacalib.report.analysis import readout_per_item
    from hacalib.scoring.loglik import caption_loglik
    from hacalib.scoring.requests import ScoreRequest

    ll = exp.per_item("videocon_loglik", "haca", 0)
    pairs = exp.per_item("videocon", "haca", 0)
    assert len(ll) == len(pairs) >= 2
    assert (ll["other_video"] != ll["video"]).all()
    cols = ["ll_true", "ll_false", "ll_true_other", "ll_false_other"]
    assert np.isfinite(ll[cols].to_numpy()).all() and (ll[cols].to_numpy() < 0).all()
    # the first row, scored directly: its own video for the two captions, the next row's video for the control
    model, processor = exp.model("haca", 0)
    videos = exp.root.videocon_videos
    direct = caption_loglik(model, processor, [
        ScoreRequest(str(videos / ll["video"][0]), ll["caption"][0]),
        ScoreRequest(str(videos / ll["other_video"][0]), ll["neg_caption"][0])])
    np.testing.assert_allclose(direct, [ll["ll_true"][0], ll["ll_false_other"][0]], rtol=1e-4)
    readout = readout_per_item(pairs, ll)
    assert list(readout.columns) == ["misalignment", "p_yes", "loglik", "loglik_other_video"]
    assert readout["loglik"].tolist() == (ll["ll_true"] > ll["ll_false"]).astype(float).tolist()


def test_velociti_and_retrieval_readouts_score_each_caption_on_its_video_and_on_another(exp):
    import numpy as np

    from hacalib.report.perception import READERS, perception_report
    from hacalib.scoring.loglik import caption_loglik
    from hacalib.scoring.requests import ScoreRequest

    vel = exp.per_item("velociti_loglik", "pretrained")
    items = exp.per_item("velociti", "pretrained")
    assert vel[["test", "video_id", "event", "pos", "neg"]].equals(items[["test", "video_id", "event", "pos", "neg"]])
    assert (vel["other_video_id"] != vel["video_id"]).all()
    cols = ["ll_pos", "ll_neg", "ll_pos_other", "ll_neg_other"]
    assert np.isfinite(vel[cols].to_numpy()).all() and (vel[cols].to_numpy() < 0).all()
    model, processor = exp.model("pretrained")
    root = exp.root
    path = lambda vid: str(root.velociti_videos / f"{vid}.mp4")  # noqa: E731
    direct = caption_loglik(model, processor, [ScoreRequest(path(vel["video_id"][0]), vel["pos"][0]),
                                               ScoreRequest(path(vel["other_video_id"][0]), vel["neg"][0])])
    np.testing.assert_allclose(direct, [vel["ll_pos"][0], vel["ll_neg_other"][0]], rtol=1e-4)

    ssv2 = exp.per_item("ssv2_loglik", "pretrained")
    scores = exp.per_item("ssv2", "pretrained")
    assert len(ssv2) == len(scores) and set(ssv2["match"]) == {0, 1} and np.isfinite(ssv2["ll"]).all()
    first = ssv2.iloc[0]
    from hacalib.data.ssv2 import extract_template

    direct = caption_loglik(model, processor, [ScoreRequest(str(root.ssv2_videos / first["video"]),
                                                            extract_template(first["query"]))])
    np.testing.assert_allclose(direct, [first["ll"]], rtol=1e-4)

    report = perception_report({"velociti": {("pretrained", 0, 0): vel}, "ssv2": {("pretrained", 0, 0): ssv2},
                                "videocon": {("pretrained", 0, 0): exp.per_item("videocon_loglik", "pretrained")}})
    assert set(report["benchmark"]) == set(READERS)
    assert set(report.loc[report["benchmark"] == "velociti", "test"]) == set(items["test"])


def test_kept_videos_are_decoded_once_and_change_no_result(exp, tmp_path, monkeypatch):
    """The toy preset's VideoStore: a second model reads the first one's processed videos (no decoding), and results
    and adapters equal those made without the store."""
    import hacalib.data.video as video
    from hacalib.models import VideoStore, processing_fingerprint
    from hacalib.scoring.benchmark import evaluate_benchmark

    assert exp.config.keep_videos and isinstance(exp.video_store, VideoStore)
    model, processor = exp.model("pretrained")
    store = VideoStore()
    run = lambda name, s: evaluate_benchmark("velociti", model, processor, exp.root, exp.config,  # noqa: E731
                                             tmp_path / name, prompt="haca", video_store=s)
    plain, first = run("plain", None), run("first", store)
    assert len(store) > 0
    decoded = []
    original = video.read_video
    monkeypatch.setattr(video, "read_video", lambda *a, **k: decoded.append(a) or original(*a, **k))
    second = run("second", store)
    assert decoded == []  # every video came from the store
    for df in (first, second):
        assert df.equals(plain)
    # another processing never shares a shelf: the fingerprint sees the frame count
    assert processing_fingerprint(processor, 8) != processing_fingerprint(processor, 4)

    # training through the store: the same adapter bytes as without it
    cfg = exp.config
    outs = [finetune_mod.finetune(exp.base_model(), exp.root, exp.train_config("haca", 0), cfg.model,
                                  tmp_path / name, tagger=exp.tagger(), progress=False, video_store=s)
            for name, s in (("without", None), ("with", store))]
    assert len(store.shelf(processor, "train")) > 0
    a, b = ((o / "adapter_model.safetensors").read_bytes() for o in outs)
    assert a == b


def test_a_preset_that_keeps_one_model_drops_the_others_and_frees_them_for_training(tmp_path, monkeypatch):
    """The paper presets hold one loaded model at a time (a 7B model is ~15 GB): asking for another drops the least
    recently used, and a run that still has to train drops them all first. The toy preset keeps every model."""
    import gc
    import weakref
    from dataclasses import replace

    import hacalib.experiment as experiment
    from hacalib.presets import preset as get_preset

    assert get_preset("toy", smoke=True).models_in_memory is None
    assert get_preset("videollava-7b").models_in_memory == get_preset("videochat2-7b").models_in_memory == 1
    preset = experiment.get_preset
    monkeypatch.setattr(experiment, "get_preset", lambda name, smoke, family=None: replace(
        preset(name, smoke=smoke, family=family), models_in_memory=1))
    exp = Experiment(preset="toy", cache_dir=str(tmp_path / "cache"), seeds=(0, 1), smoke=True)
    base = weakref.ref(exp.model("pretrained")[0])
    assert exp.model("pretrained")[0] is base()  # the same model while it is the one kept
    trained = []
    original = finetune_mod.train
    monkeypatch.setattr(finetune_mod, "train", lambda *a, **k: trained.append(len(exp._models)) or original(*a, **k))
    haca = weakref.ref(exp.model("haca", 0)[0])  # trains the run first: the pretrained model is dropped before
    gc.collect()
    assert trained == [0] and base() is None and list(exp._models) == [("haca", 0, 0, None, ())]
    exp.finetuned("entail", 1)  # another run to train: the loaded model goes first
    assert trained == [0, 0] and not exp._models
    exp.model("haca", 0)
    exp.finetuned("haca", 0)  # already trained: nothing is dropped
    assert len(exp._models) == 1 and trained == [0, 0] and haca() is None  # reloaded after the release


def test_loaded_models_keep_the_most_recently_used_within_the_limit():
    from hacalib.models import LoadedModels

    loads = []
    kept = LoadedModels()
    get = lambda key, limit: kept.get(key, lambda: loads.append(key) or key.upper(), limit=limit)  # noqa: E731
    assert get("a", None) == "A" and get("b", None) == "B" and get("a", None) == "A"
    assert list(kept) == ["b", "a"] and loads == ["a", "b"]  # "a" used last; loaded once
    assert get("c", 2) == "C" and list(kept) == ["a", "c"]  # "b", the least recently used, dropped first
    assert get("d", 1) == "D" and list(kept) == ["d"] and loads == ["a", "b", "c", "d"]
    kept.release()
    assert len(kept) == 0 and not kept
