"""Reward-model training engine: plain Python, PyTorch and transformers, no Django.

    from rewardmodel.training import TrainConfig, RewardScorer, train
    result = train(TrainConfig(epochs=2, output_dir="out/rm"), train_pairs, eval_pairs)
    scorer = RewardScorer.load("out/rm")
    raw, normalized = scorer.score(["prompt"], ["response"])

`python -m rewardmodel.training --help` runs it from the command line.
"""

import importlib

from .config import TrainConfig

# The web side imports `TrainConfig` (and `preferences`, which has no torch);
# neither should pay for importing torch and transformers (about 2 s and
# hundreds of MB per process), so the rest loads on first use. (That is
# also why the loop lives in trainer.py: a submodule named `train` would
# shadow the function `train` once imported.)
_LAZY = {
    "train": ".trainer",
    "TrainResult": ".trainer",
    "Progress": ".trainer",
    "TrainingCancelled": ".trainer",
    "RewardScorer": ".scoring",
}

__all__ = ["TrainConfig", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
