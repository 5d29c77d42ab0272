"""Which unlabelled pairs to label next, from a head's view of them. No Django.

Every strategy turns a pool of candidate pairs (their feature differences
and positions) into an order, most wanted first:

- ``random``: a seeded shuffle, what the queue does without a model.
- ``uncertainty``: P(a beats b) under the head's w_map closest to 1/2.
- ``disagreement``: BALD, the mutual information between the label and the
  head's weights, estimated with its posterior members:
  H[mean_k p_k] - mean_k H[p_k]. High where the members disagree, not where
  they all agree on a coin flip.
- ``diverse``: a batch-aware version of BALD after BAL-PM (Melo et al.,
  2024): the first `batch` picks are made greedily, each maximising its
  BALD score (ranked, 0..1) plus the log distance from its position in
  feature space to the nearest pair already labelled or picked, a k=1
  estimate of how much it adds to the entropy of what is labelled. So a
  batch is not fifty near-duplicates. The rest follow in BALD order.

A pair's *position* is the mean of its two sides' features (its prompt and
responses, as the head sees them); its *difference* is f_a - f_b.
"""

from __future__ import annotations

import numpy as np

from .head import LinearHead, _sigmoid

STRATEGIES = ("random", "uncertainty", "disagreement", "diverse")
DIVERSE_BATCH = 64
DIVERSE_CANDIDATES = 2048


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def bald(head: LinearHead, diff: np.ndarray) -> np.ndarray:
    """Mutual information between each pair's label and the head's weights, from its members."""
    p = _sigmoid(head.member_margins(diff))  # (K, n)
    return _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)


def _ranks01(x: np.ndarray) -> np.ndarray:
    """Each value's rank scaled to 0..1 (ties broken by position)."""
    order = np.argsort(x, kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(len(x)) / max(len(x) - 1, 1)
    return out


def diverse_order(
    scores: np.ndarray, positions: np.ndarray, labelled: np.ndarray | None, batch: int, candidates: int
) -> np.ndarray:
    """Greedy BAL-PM-style picks for the first `batch`, then the rest by score."""
    by_score = np.argsort(-scores, kind="stable")
    pool = by_score[: min(candidates, len(scores))]
    value = _ranks01(scores[pool])
    pos = positions[pool].astype(np.float64)
    scale = float(np.sqrt(np.mean(pos.var(axis=0)))) or 1.0
    if labelled is not None and len(labelled):
        ref = labelled.astype(np.float64)
        nearest = np.full(len(pool), np.inf)
        for start in range(0, len(ref), 4096):  # bounded memory: (pool x 4096) distances at a time
            block = ref[start : start + 4096]
            d2 = (pos**2).sum(1)[:, None] - 2 * pos @ block.T + (block**2).sum(1)[None, :]
            nearest = np.minimum(nearest, np.sqrt(np.maximum(d2, 0)).min(axis=1))
    else:
        nearest = np.full(len(pool), np.inf)
    picked: list[int] = []
    taken = np.zeros(len(pool), dtype=bool)
    for _ in range(min(batch, len(pool))):
        novelty = np.where(np.isfinite(nearest), np.log(nearest / scale + 1e-6), 10.0)
        gain = np.where(taken, -np.inf, value + novelty)
        i = int(np.argmax(gain))
        picked.append(i)
        taken[i] = True
        d = np.sqrt(((pos - pos[i]) ** 2).sum(axis=1))
        nearest = np.minimum(nearest, d)
    first = pool[picked]
    rest = by_score[~np.isin(by_score, first)]
    return np.concatenate([first, rest])


def pair_scores(strategy: str, *, head: LinearHead | None, diff: np.ndarray, seed: int = 0) -> np.ndarray:
    """How much each pair is wanted (higher first), computable a chunk of the pool at a time.

    `diverse` scores by BALD here; its batch-aware picks come after
    (`diverse_order`), among the best-scored candidates only.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy == "random" or head is None:
        return np.random.default_rng(seed).random(len(diff))
    if strategy == "uncertainty":
        return -np.abs(diff @ head.weight)
    return bald(head, diff)


def acquisition_order(
    strategy: str,
    *,
    head: LinearHead | None,
    diff: np.ndarray,
    positions: np.ndarray | None = None,
    labelled_positions: np.ndarray | None = None,
    seed: int = 0,
    batch: int = DIVERSE_BATCH,
    candidates: int = DIVERSE_CANDIDATES,
) -> np.ndarray:
    """Indices into the pool (rows of `diff`), most wanted first (the whole pool in memory)."""
    scores = pair_scores(strategy, head=head, diff=diff, seed=seed)
    if strategy == "diverse" and head is not None and len(diff):
        return diverse_order(
            scores, positions if positions is not None else diff, labelled_positions, batch, candidates
        )
    return np.argsort(-scores, kind="stable")


def with_exploration(order: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The order with a random `share` of its pairs moved to random places in it.

    Each pair is an explorer with probability `share`; explorers get random
    places, the rest keep their relative order, evenly spread. So about
    `share` of any stretch of the order is a random pick, and a strategy
    never trains only on its own choices.
    """
    n = len(order)
    if n == 0 or share <= 0:
        return order
    rng = np.random.default_rng(seed)
    explore = rng.random(n) < share
    place = np.empty(n)
    place[~explore] = (np.arange((~explore).sum()) + 0.5) / max((~explore).sum(), 1)
    place[explore] = rng.random(explore.sum())
    return order[np.argsort(place, kind="stable")]
