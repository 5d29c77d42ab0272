"""Scoring pairs with a model, and what the scores say about it.

`score_pairs` is the only code here that touches the model. The metrics are
plain NumPy on per-pair margins (r_chosen - r_rejected), so they are easy
to check by hand. Every metric is a finite float, or None where the data
leave it undefined (no eval pairs, an empty bin), so the dict is JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .data import Collator, EncodedPairs, sorted_batches
from .runtime import Runtime

# Bins of the response length difference in tokens (chosen - rejected):
# [lo, hi) with None for an open end.
LENGTH_EDGES = (None, -32, -8, 9, 33, None)
CALIBRATION_BINS = 10
BOOTSTRAP_SAMPLES = 1000


# --------------------------------------------------------------------------- #
# Scoring
# --------------------------------------------------------------------------- #
@torch.inference_mode()
def score_pairs(
    model: torch.nn.Module,
    pairs: EncodedPairs,
    pair_idx: Sequence[int],
    batch_size: int,
    collate: Collator,
    runtime: Runtime,
    swap: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Rewards (chosen, rejected) of the pairs `pair_idx`, in that order.

    Each batch is one forward pass over its chosen and rejected rows
    (swapped in order with `swap`). Rewards stay on the device until the
    end: one host transfer, not one per batch.
    """
    was_training = model.training
    model.eval()
    lengths = pairs.pair_lengths
    n = len(pair_idx)
    rewards = torch.empty(2 * n, device=runtime.device)
    for batch in sorted_batches([lengths[i] for i in pair_idx], batch_size):
        batch_pairs = [pair_idx[j] for j in batch]
        inputs = collate(pairs.seqs, pairs.rows(batch_pairs, swap=swap)).inputs
        with runtime.autocast():
            r = model(**inputs).logits.squeeze(-1).float()
        first, second = r.chunk(2)
        r_chosen, r_rejected = (second, first) if swap else (first, second)
        at = torch.tensor(batch, device=runtime.device)
        rewards[at] = r_chosen
        rewards[n + at] = r_rejected
    model.train(was_training)
    out = rewards.cpu().numpy().astype(np.float64)
    return out[:n], out[n:]


def swap_max_abs_diff(
    model: torch.nn.Module,
    pairs: EncodedPairs,
    pair_idx: Sequence[int],
    batch_size: int,
    collate: Collator,
    runtime: Runtime,
) -> float:
    """Largest change of any reward when chosen and rejected trade places in the batch.

    Each row is scored on its own, so a side cannot leak into the score by
    construction; this measures that, numerical noise included.
    """
    plain = score_pairs(model, pairs, pair_idx, batch_size, collate, runtime)
    swapped = score_pairs(model, pairs, pair_idx, batch_size, collate, runtime, swap=True)
    return float(max(np.abs(plain[0] - swapped[0]).max(), np.abs(plain[1] - swapped[1]).max()))


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
def finite(x) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def accuracy(margins: np.ndarray) -> float | None:
    """Share of pairs whose chosen side scores higher."""
    return float((margins > 0).mean()) if len(margins) else None


def bootstrap_ci(correct: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> list[float | None]:
    """95% percentile bootstrap interval of the mean of 0/1 outcomes."""
    if len(correct) == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), size=(samples, len(correct)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def calibration(margins: np.ndarray) -> tuple[float | None, list[dict]]:
    """ECE and the reliability-diagram data of P(chosen wins) = sigmoid(margin).

    The label is always "chosen", so calibration is measured on the model's
    pick: confidence = sigmoid(|margin|) in [0.5, 1], correct when the pick
    is the chosen side. Ten equal bins over [0.5, 1]; ECE is the
    count-weighted mean |accuracy - confidence| over the bins.
    """
    edges = np.linspace(0.5, 1.0, CALIBRATION_BINS + 1)
    confidence = 1.0 / (1.0 + np.exp(-np.abs(margins)))
    correct = (margins > 0).astype(float)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, CALIBRATION_BINS - 1)
    bins, ece = [], 0.0
    for b in range(CALIBRATION_BINS):
        in_bin = which == b
        count = int(in_bin.sum())
        conf = float(confidence[in_bin].mean()) if count else None
        acc = float(correct[in_bin].mean()) if count else None
        if count:
            ece += count / len(margins) * abs(acc - conf)
        bins.append(
            {
                "bin_lo": float(edges[b]),
                "bin_hi": float(edges[b + 1]),
                "confidence": conf,
                "accuracy": acc,
                "count": count,
            }
        )
    return (ece if len(margins) else None), bins


def length_buckets(margins: np.ndarray, length_diff: np.ndarray) -> list[dict]:
    """Accuracy by response length difference (chosen - rejected, tokens)."""
    out = []
    for lo, hi in zip(LENGTH_EDGES[:-1], LENGTH_EDGES[1:]):
        mask = np.ones(len(margins), bool)
        if lo is not None:
            mask &= length_diff >= lo
        if hi is not None:
            mask &= length_diff < hi
        label = f"< {hi}" if lo is None else f">= {lo}" if hi is None else f"{lo}..{hi - 1}"
        count = int(mask.sum())
        out.append(
            {
                "bucket": label,
                "lo": lo,
                "hi": hi,
                "count": count,
                "accuracy": float((margins[mask] > 0).mean()) if count else None,
            }
        )
    return out


def pair_metrics(
    r_chosen: np.ndarray,
    r_rejected: np.ndarray,
    chosen_tokens: Sequence[int],
    rejected_tokens: Sequence[int],
    seed: int = 0,
) -> dict:
    """Held-out metrics of one set of scored pairs (all None when there are none)."""
    margins = r_chosen - r_rejected
    correct = (margins > 0).astype(float)
    n = len(margins)
    diff = np.asarray(chosen_tokens, dtype=float) - np.asarray(rejected_tokens, dtype=float)
    unequal = diff != 0
    ece, reliability = calibration(margins)
    rewards = np.concatenate([r_chosen, r_rejected])
    mean, std = (rewards.mean(), rewards.std()) if n else (None, None)
    return {
        "held_out_accuracy": accuracy(margins),
        "held_out_accuracy_ci": bootstrap_ci(correct, seed),
        # plain Bradley-Terry NLL, no margin: comparable across configs
        "eval_loss": finite(np.logaddexp(0.0, -margins).mean()) if n else None,
        "ece": finite(ece),
        "reliability": reliability,
        "length_buckets": length_buckets(margins, diff),
        # "the longer response wins"; equal lengths count as a coin flip
        "length_baseline_accuracy": finite(np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0)).mean())
        if n
        else None,
        "p_model_prefers_longer": finite(((margins > 0) == (diff > 0))[unequal].mean()) if unequal.any() else None,
        "p_human_prefers_longer": finite((diff > 0)[unequal].mean()) if unequal.any() else None,
        "reward_mean": finite(mean),
        "reward_std": finite(std),
        "extreme_reward_share": finite((np.abs(rewards - mean) > 5 * std).mean()) if n and std else None,
    }


def ensemble_margins(member_margins: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean margin per pair over members (rows), and the members' spread (std) per pair."""
    if len(member_margins) == 1:
        return member_margins[0], None
    return member_margins.mean(axis=0), member_margins.std(axis=0)


def disagreement_summary(member_margins: np.ndarray, spread: np.ndarray | None) -> dict:
    """How much the ensemble members disagree, over all pairs."""
    if spread is None or member_margins.shape[1] == 0:
        return {"ensemble_disagreement": None, "ensemble_split_share": None}
    picks = member_margins > 0
    split = picks.any(axis=0) & ~picks.all(axis=0)
    return {
        "ensemble_disagreement": finite(spread.mean()),  # mean std of the members' margins
        "ensemble_split_share": finite(split.mean()),  # pairs where members pick different sides
    }
