"""The engine configuration of a run: defaults, then settings, then the project's policy.

    TrainConfig()                      the engine's defaults (or TrainConfig.tiny()
                                       when RM_TRAIN_PRESET=tiny: tests, demos)
    <- settings.RM_TRAIN_OVERRIDES     deployment-wide fields
    <- RetrainPolicy.train_config      per-project fields, edited by admins

`output_dir` is never taken from overrides: the worker chooses the folder.
The backbone must be the default one or listed in RM_ALLOWED_BACKBONES: a
Hub id or server folder is code and weights that the workers will load.
(The engine itself allows only size and dropout fields in config_overrides.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from rewardmodel.training import TrainConfig
from rewardmodel.training.config import DEFAULT_BACKBONE

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
    config = TrainConfig.from_dict({**data, "kind": kind})
    backbone_check(config.backbone)
    return config


def backbone_check(backbone: str) -> None:
    """Raise ValueError unless the backbone is the default one or in RM_ALLOWED_BACKBONES."""
    allowed = [DEFAULT_BACKBONE, *settings.RM_ALLOWED_BACKBONES]
    if backbone not in allowed:
        raise ValueError(
            f"backbone {backbone!r} is not allowed here; allowed: {', '.join(allowed)} "
            "(a deployment adds more with RM_ALLOWED_BACKBONES)"
        )


def train_config_error(*, policy_overrides: Any) -> str | None:
    """Why these per-project overrides are unusable, or None when they are fine."""
    try:
        train_config_build(policy_overrides=policy_overrides)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None
