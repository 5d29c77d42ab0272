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


def test_backbones_outside_the_allow_list_are_refused(rm_settings, settings):
    from rewardmodel.run_config import train_config_build, train_config_error
    from rewardmodel.training.config import DEFAULT_BACKBONE

    # the default backbone is always allowed
    assert train_config_build(policy_overrides={"backbone": DEFAULT_BACKBONE}).backbone == DEFAULT_BACKBONE
    # anything else is refused, naming the setting that adds it
    error = train_config_error(policy_overrides={"backbone": "someone/remote-code-model"})
    assert "not allowed" in error and "RM_ALLOWED_BACKBONES" in error
    settings.RM_ALLOWED_BACKBONES = ["someone/remote-code-model"]
    assert train_config_error(policy_overrides={"backbone": "someone/remote-code-model"}) is None


@pytest.mark.parametrize("key", ["trust_remote_code", "auto_map", "_name_or_path", "attn_implementation"])
def test_config_overrides_are_limited_to_sizes_and_dropout(rm_settings, key):
    from rewardmodel.run_config import train_config_error

    error = train_config_error(policy_overrides={"config_overrides": {key: True}})
    assert f"config_overrides may not set {key}" in error


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes through its own connection
def test_a_worker_refuses_a_queued_run_whose_backbone_it_does_not_allow(labelled_project, settings, monkeypatch):
    from rewardmodel import execution, services
    from rewardmodel.models import TrainingRun

    # given a run queued where the backbone was allowed, on a worker where it is not
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)
    settings.RM_ALLOWED_BACKBONES = ["elsewhere/model"]
    services.retrain_policy_update(project=labelled_project, train_config={"backbone": "elsewhere/model"})
    run = services.training_run_request(project=labelled_project, trigger=TrainingRun.Trigger.API)
    settings.RM_ALLOWED_BACKBONES = []
    # when it runs, then it fails before loading anything
    assert execution.training_run_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert "not allowed" in run.error
