"""Replay a labelled file as if annotators were answering it, to compare acquisition strategies. No Django.

The file's pairs are split by prompt as a project splits them
(`preferences.splits`, 20% held out). Every strategy starts from the same
random `seed_labels` pairs of the training pool (per seed), then, round
after round, fits a head (`head.fit_head`) on what is labelled, records its
held-out accuracy, and labels the next `batch` pairs the strategy asks for
(the file's own labels answer, as an annotator would). Held-out pairs are
never labelled by the strategy and always scored.

Features are embedded once per side and cached, so strategies and seeds
cost only head fits.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from preferences.records import PreferenceRecord
from preferences.splits import split_for_prompt

from .acquisition import acquisition_order, with_exploration
from .head import fit_head

Progress = Callable[[str], None]


@dataclass
class SimPair:
    prompt: str
    response_a: str
    response_b: str
    q: float  # P(a is better) by the file's labels: 1 or 0 for a decisive majority


def sim_pairs(records: Sequence[PreferenceRecord]) -> list[SimPair]:
    """Pairs with a decisive label, their sides flipped by a hash of their text (as an import shuffles them)."""
    from preferences.labels import Tally

    out = []
    for r in records:
        winner = Tally.of(v.choice for v in r.votes).winner
        if winner is None:
            continue
        pair = SimPair(r.prompt, r.response_a, r.response_b, 1.0 if winner == "a" else 0.0)
        if zlib.crc32((r.prompt + r.response_a + r.response_b).encode()) % 2:
            pair = SimPair(r.prompt, r.response_b, r.response_a, 1.0 - pair.q)
        out.append(pair)
    return out


@dataclass
class Pool:
    """Features of the pairs, split into the training pool and the held-out set."""

    diff: np.ndarray  # f_a - f_b
    position: np.ndarray  # (f_a + f_b) / 2
    q: np.ndarray
    prompts: list[str]
    train: np.ndarray  # indices
    test: np.ndarray

    @classmethod
    def build(
        cls, pairs: Sequence[SimPair], features_a: np.ndarray, features_b: np.ndarray, test_percent: int = 20
    ) -> Pool:
        split = np.array([split_for_prompt(p.prompt, test_percent) == "test" for p in pairs])
        return cls(
            diff=(features_a - features_b).astype(np.float64),
            position=((features_a + features_b) / 2).astype(np.float32),
            q=np.array([p.q for p in pairs]),
            prompts=[p.prompt for p in pairs],
            train=np.flatnonzero(~split),
            test=np.flatnonzero(split),
        )


def run_curve(
    pool: Pool,
    strategy: str,
    *,
    seed: int,
    seed_labels: int,
    batch: int,
    budget: int,
    exploration: float = 0.1,
    members: int = 5,
) -> list[tuple[int, float]]:
    """(labels, held-out accuracy) after each round of one strategy, from one seed."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(pool.train, size=min(seed_labels, len(pool.train)), replace=False))
    budget = min(budget, len(pool.train))
    curve = []
    test_diff, test_q = pool.diff[pool.test], pool.q[pool.test]
    round_no = 0
    while True:
        idx = np.array(labelled)
        head, _ = fit_head(pool.diff[idx], pool.q[idx], [pool.prompts[i] for i in idx], members=members, seed=seed)
        margins = test_diff @ head.weight
        correct = np.where(test_q >= 0.5, margins > 0, margins < 0)
        curve.append((len(labelled), float(correct.mean())))
        if len(labelled) >= budget:
            return curve
        unlabelled = np.setdiff1d(pool.train, idx)
        order = acquisition_order(
            strategy,
            head=head,
            diff=pool.diff[unlabelled],
            positions=pool.position[unlabelled],
            labelled_positions=pool.position[idx],
            seed=seed * 1000 + round_no,
            batch=batch,
        )
        order = with_exploration(order, exploration, seed=seed * 1000 + round_no + 1)
        take = min(batch, budget - len(labelled))
        labelled += list(unlabelled[order[:take]])
        round_no += 1


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def labels_to_reach(curve_labels: Sequence[int], curve_acc: Sequence[float], target: float) -> float | None:
    """The labels at which a (mean) curve first reaches `target`, linearly interpolated; None if never."""
    for i, (n, acc) in enumerate(zip(curve_labels, curve_acc)):
        if acc >= target:
            if i == 0:
                return float(n)
            n0, a0 = curve_labels[i - 1], curve_acc[i - 1]
            return float(n0 + (n - n0) * (target - a0) / (acc - a0)) if acc > a0 else float(n)
    return None


def summarise(curves: dict[str, list[list[tuple[int, float]]]], budget: int, draws: int = 2000, seed: int = 0) -> dict:
    """Mean curves with CIs, and the share of the budget each strategy needs to match random at the budget.

    The share's interval resamples seeds (paired: one draw of seeds for every
    strategy), so it reflects how much the comparison moves with them.
    """
    out: dict = {"strategies": {}, "labels_to_match_random": {}, "labels_to_match_random_ci": {}}
    for name, runs in curves.items():
        labels = [n for n, _ in runs[0]]
        acc = np.array([[a for _, a in run] for run in runs])  # (seeds, points)
        out["strategies"][name] = {
            "curve": [[n, *(round(v, 4) for v in mean_ci(acc[:, j]))] for j, n in enumerate(labels)]
        }
    if "random" not in curves:
        return out
    rng = np.random.default_rng(seed)
    seeds = len(curves["random"])
    random_acc = np.array([[a for _, a in run] for run in curves["random"]])
    for name, runs in curves.items():
        labels = [n for n, _ in runs[0]]
        acc = np.array([[a for _, a in run] for run in runs])
        reached = labels_to_reach(labels, acc.mean(axis=0), random_acc.mean(axis=0)[-1])
        out["labels_to_match_random"][name] = None if reached is None else round(reached / budget, 3)
        shares = []
        for _ in range(draws):
            pick = rng.integers(0, seeds, seeds)
            r = labels_to_reach(labels, acc[pick].mean(axis=0), random_acc[pick].mean(axis=0)[-1])
            shares.append(np.inf if r is None else r / budget)
        lo, hi = np.percentile(shares, [2.5, 97.5])
        out["labels_to_match_random_ci"][name] = [
            round(float(lo), 3) if np.isfinite(lo) else None,
            round(float(hi), 3) if np.isfinite(hi) else None,
        ]
    return out
