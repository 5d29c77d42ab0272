"""The engine configuration of a run: defaults, then settings, then the project's policy.

    TrainConfig()                      the engine's defaults (or TrainConfig.tiny()
                                       when RM_TRAIN_PRESET=tiny: tests, demos)
    <- settings.RM_TRAIN_OVERRIDES     deployment-wide fields
    <- RetrainPolicy.train_config      per-project fields, edited by admins

`output_dir` is never taken from overrides: the worker chooses the folder.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from rewardmodel.training import TrainConfig

PRESETS = ("default", "tiny")
RESERVED_FIELDS = ("output_dir", "kind")


def _preset(name: str) -> TrainConfig:
    if name == "tiny":
        return TrainConfig.tiny()
    return TrainConfig()


def train_config_build(*, policy_overrides: dict[str, Any] | None = None, kind: str = "finetune") -> TrainConfig:
    """The config a new run of `kind` uses. Raises ValueError naming a bad field.

    The kind comes from the run, never from overrides: one policy's
    train_config (its backbone, say) serves both kinds.
    """
    data = _preset(settings.RM_TRAIN_PRESET).to_dict()
    for source in (settings.RM_TRAIN_OVERRIDES, policy_overrides or {}):
        if not isinstance(source, dict):
            raise ValueError("train_config must be a JSON object of TrainConfig fields")
        reserved = sorted(set(source) & set(RESERVED_FIELDS))
        if reserved:
            raise ValueError(f"{', '.join(reserved)} cannot be overridden: the run chooses its kind and folder")
        data.update(source)
    return TrainConfig.from_dict({**data, "kind": kind})


def train_config_error(*, policy_overrides: Any) -> str | None:
    """Why these per-project overrides are unusable, or None when they are fine."""
    try:
        train_config_build(policy_overrides=policy_overrides)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None
