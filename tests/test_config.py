"""Configuration dataclasses: a bad value fails where the config is built and names the field."""

from dataclasses import replace

import pytest

from hacalib.config import (
    DEFAULT_MASK_RATIO,
    OBJECTIVES,
    ConfigError,
    ModelConfig,
    PretrainConfig,
    ToyWorldConfig,
    TrainConfig,
    result_neutral_fields,
)


@pytest.mark.parametrize("build, field", [
    (lambda: TrainConfig(objective="entailment"), "TrainConfig.objective"),
    (lambda: TrainConfig(loss_reduction="mean"), "TrainConfig.loss_reduction"),
    (lambda: TrainConfig(max_steps=0), "TrainConfig.max_steps"),
    (lambda: TrainConfig(mask_ratio=1.5), "TrainConfig.mask_ratio"),
    (lambda: TrainConfig(lr="fast"), "TrainConfig.lr"),
    (lambda: ModelConfig(dtype="float8"), "ModelConfig.dtype"),
    (lambda: ModelConfig(lora_dropout=-0.1), "ModelConfig.lora_dropout"),
    (lambda: PretrainConfig(position_init="learned"), "PretrainConfig.position_init"),
    (lambda: ToyWorldConfig(size="huge"), "ToyWorldConfig.size"),
    (lambda: ToyWorldConfig(seed=-1), "ToyWorldConfig.seed"),
])
def test_bad_values_fail_at_construction_naming_the_field(build, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build()


def test_replace_validates_too():
    with pytest.raises(ConfigError, match=r"TrainConfig\.seed"):
        replace(TrainConfig(), seed=-3)
    assert replace(TrainConfig(), objective="haca_mask", seed=2).objective == "haca_mask"


def test_booleans_are_not_numbers():
    with pytest.raises(ConfigError, match=r"TrainConfig\.batch_size"):
        TrainConfig(batch_size=True)


def test_shared_facts():
    assert OBJECTIVES == ("entail", "haca", "haca_mask")
    assert DEFAULT_MASK_RATIO == 0.45 == TrainConfig().mask_ratio
    # the fields that never change what a run learns: out of the cache key and the resume check
    assert result_neutral_fields(TrainConfig) == {
        "output_dir", "log_every", "checkpoint_every", "keep_checkpoints", "cache_vision_features",
        "vision_cache_dir", "max_cached_videos", "max_cached_features"}
    assert result_neutral_fields(PretrainConfig) == frozenset()
