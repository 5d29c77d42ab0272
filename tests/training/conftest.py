"""Fixtures for the training engine: synthetic pairs a tiny model can learn.

Nothing here needs Django or the network.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from preferences.records import TrainingPair

WORDS = ["apple", "river", "stone", "cloud", "music", "paper", "garden", "window", "silver", "yellow"]


def make_pairs(n: int, seed: int = 0) -> list[TrainingPair]:
    """Pairs whose chosen reply ends politely and rejected reply rudely: learnable in seconds."""
    rng = random.Random(seed)

    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    return [
        TrainingPair(
            prompt=f"Human: {words(3, 20)}?",
            chosen=f"{words(2, 8)} thank you kindly",
            rejected=f"{words(2, 8)} go away now",
            strength=rng.choice([None, 1, 2, 3]),
            pair_id=str(i),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def pairs() -> list[TrainingPair]:
    return make_pairs(64)


@pytest.fixture(scope="session")
def train_pairs(pairs) -> list[TrainingPair]:
    return pairs[:48]


@pytest.fixture(scope="session")
def eval_pairs(pairs) -> list[TrainingPair]:
    return pairs[48:]


@pytest.fixture(scope="session")
def saved_run(tmp_path_factory, train_pairs, eval_pairs):
    """One tiny model trained and saved, shared by the loading and scoring tests."""
    from rewardmodel.training import TrainConfig, train

    out = tmp_path_factory.mktemp("rm") / "model"
    out.mkdir()
    result = train(TrainConfig.tiny(output_dir=str(out)), train_pairs, eval_pairs)
    return result, out
