"""Engine config of a run: preset, then settings, then the project's policy."""

import pytest

from rewardmodel.run_config import train_config_build, train_config_error
from rewardmodel.training import TrainConfig


def test_tiny_preset_then_settings_then_policy(settings):
    # given the tiny preset, a deployment-wide override and a project override
    settings.RM_TRAIN_PRESET = "tiny"
    settings.RM_TRAIN_OVERRIDES = {"epochs": 3, "lr": 0.002}
    # when the config is built
    config = train_config_build(policy_overrides={"epochs": 5})
    # then each layer wins over the one before
    assert config.random_init is True  # from the preset
    assert config.lr == 0.002  # from settings
    assert config.epochs == 5  # from the policy
    assert config.device == "auto"  # CUDA when the worker has it


def test_default_preset_is_the_engine_default(settings):
    settings.RM_TRAIN_PRESET = "default"
    settings.RM_TRAIN_OVERRIDES = {}
    assert train_config_build() == TrainConfig()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epochz": 2}, "unknown TrainConfig field"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"output_dir": "/tmp/x"}, "output_dir cannot be overridden"),
        (["epochs"], "must be a JSON object"),
    ],
)
def test_bad_overrides_are_named(settings, overrides, message):
    settings.RM_TRAIN_OVERRIDES = {}
    assert message in train_config_error(policy_overrides=overrides)
