import dataclasses
import json

import pytest

from rewardmodel.training import TrainConfig
from rewardmodel.training.config import DEFAULT_BACKBONE


def test_every_field_has_help_text():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"{f.name} has no help"


def test_round_trips_through_json():
    config = TrainConfig(
        epochs=3,
        lr=1e-4,
        ensemble=2,
        output_dir="/tmp/x",
        bf16=False,
        config_overrides={"num_hidden_layers": 2},
        strength_margins=[0, 1, 2],
    )
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_unknown_keys_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown TrainConfig field.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-4})


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": -1},
        {"device": "tpu"},
        {"compile": "yes"},
        {"warmup_ratio": 1.5},
        {"strength_margins": [1, 2]},
        {"max_length": 4},
        {"pad_to_multiple_of": 0},
    ],
)
def test_invalid_values_are_rejected(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_tiny_preset_is_a_small_random_bert_with_overrides():
    config = TrainConfig.tiny(epochs=1, seed=7)
    assert config.random_init and config.config_overrides["num_hidden_layers"] == 2
    assert config.backbone == DEFAULT_BACKBONE  # keeps the packaged tokenizer
    assert (config.epochs, config.seed) == (1, 7)


def test_config_overrides_may_not_load_code():
    import pytest

    from rewardmodel.training import TrainConfig

    with pytest.raises(ValueError, match="config_overrides may not set trust_remote_code"):
        TrainConfig(config_overrides={"trust_remote_code": True})
    assert TrainConfig.tiny().config_overrides["num_hidden_layers"] == 2
