"""Agreement statistics over vote tallies, with confidence intervals. No Django.

Every inter-annotator figure here depends only on each pair's counts over
the three nominal categories a / b / tie (both_bad counts as tie). So the
input is a *tally histogram*: `counts` (B, 3), one row per distinct
(n_a, n_b, n_tie), and `weights` (B,), how many pairs have that tally. The
dashboard keeps that histogram up to date as votes are folded in (dashboard.TallyBucket),
so the statistics cost the same at 1M votes as at 1k.

Weights may also be (R, B): R resamples at once, which is how the bootstrap
stays vectorised (resampling pairs = a multinomial draw over buckets).

Definitions (pairs with fewer than two votes are left out of all three):

- percent agreement: mean over pairs of the share of agreeing ordered vote
  pairs, P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)).
- Fleiss' kappa: (mean P_i - P_e) / (1 - P_e), with P_e = sum_j p_j^2 and p_j
  the share of category j among all votes of those pairs. With the same
  number of votes on every pair this is exactly statsmodels'
  `fleiss_kappa`; with unequal numbers it is the usual generalisation where
  each pair's P_i uses its own n_i (statsmodels refuses that case).
- Krippendorff's alpha, nominal: 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2)
  from the coincidence matrix; equal to `krippendorff.alpha(...,
  level_of_measurement="nominal")` with missing votes as NaN.
- human ceiling: leave-one-out agreement of one annotator with the strict
  majority of the others on the pair, over decisive votes (a or b) whose
  others' majority is decisive too: a model only ever picks a or b, so this
  is the figure to hold a model's agreement with the majority against.

Example::

    >>> counts, weights = tally_histogram([["a", "a", "b"], ["tie", "tie"], ["a"]])
    >>> round(fleiss_kappa(counts, weights), 4), round(percent_agreement(counts, weights), 4)
    (0.4792, 0.6667)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from preferences.labels import CATEGORIES, Tally, category_of, plurality

Z95 = 1.959963984540054
BOOTSTRAP_DRAWS = 1000


def tally_histogram(pairs_choices: Iterable[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(counts, weights) from each pair's list of choices; pairs with no vote are skipped."""
    hist: Counter = Counter()
    for choices in pairs_choices:
        tally = Tally.of(choices)
        if tally.total:
            hist[tally.as_tuple()] += 1
    keys = sorted(hist)
    counts = np.array(keys, dtype=np.int64).reshape(-1, 3)
    return counts, np.array([hist[k] for k in keys], dtype=np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray | float:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def _multi_vote(counts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts as float, per-bucket vote totals, and weights zeroed where a pair has < 2 votes."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    n = counts.sum(axis=1)
    w = np.asarray(weights, dtype=np.float64) * (n >= 2)
    return counts, n, w


def _p_i(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, ((counts**2).sum(axis=1) - n) / np.maximum(n * (n - 1), 1), 0.0)


def percent_agreement(counts: np.ndarray, weights: np.ndarray):
    """Observed pairwise agreement (mean P_i) over pairs with >= 2 votes."""
    counts, n, w = _multi_vote(counts, weights)
    return _ratio(w @ _p_i(counts, n), w.sum(axis=-1))


def fleiss_kappa(counts: np.ndarray, weights: np.ndarray):
    """Fleiss' kappa, generalised to unequal votes per pair (see the module doc)."""
    counts, n, w = _multi_vote(counts, weights)
    p_bar = _ratio(w @ _p_i(counts, n), w.sum(axis=-1))
    p_j = _ratio(w @ counts, np.expand_dims(w @ n, -1))
    p_e = (np.asarray(p_j) ** 2).sum(axis=-1)
    return _ratio(np.asarray(p_bar - p_e), np.asarray(1.0 - p_e) * (np.abs(1.0 - p_e) > 1e-12))


def krippendorff_alpha(counts: np.ndarray, weights: np.ndarray):
    """Krippendorff's alpha for nominal data from the coincidence matrix."""
    counts, n_u, w = _multi_vote(counts, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        o_diag_u = np.where(n_u >= 2, (counts * (counts - 1)).sum(axis=1) / np.maximum(n_u - 1, 1), 0.0)
    o_diag = w @ o_diag_u
    n_c = w @ counts
    n = n_c.sum(axis=-1)
    expected = n**2 - (n_c**2).sum(axis=-1)
    expected = np.asarray(expected) * (np.asarray(expected) > 1e-9)  # one category only: alpha is undefined
    return 1.0 - np.asarray(_ratio(np.asarray((n - 1) * (n - o_diag)), expected))


_CATEGORY_INDEX = {None: -1, **{c: i for i, c in enumerate(CATEGORIES)}}


def majority(counts: np.ndarray) -> np.ndarray:
    """Per tally row, the index of its label (0 a, 1 b, 2 tie), or -1 when it has none.

    The label rule itself is `preferences.labels.plurality`; this applies it
    to each row of a tally histogram (a few dozen rows, whatever the votes).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    return np.array([_CATEGORY_INDEX[plurality(*map(int, row))] for row in counts], dtype=np.int64)


def loo_instances(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: (decisive votes whose others' majority is decisive, how many match it)."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    inst = np.zeros(len(counts))
    agree = np.zeros(len(counts))
    for c in (0, 1):
        has = counts[:, c] >= 1
        others = counts.copy()
        others[:, c] -= has.astype(np.int64)
        maj = majority(others)
        counted = has & (maj >= 0) & (maj <= 1) & (counts.sum(axis=1) >= 2)
        inst += np.where(counted, counts[:, c], 0)
        agree += np.where(counted & (maj == c), counts[:, c], 0)
    return inst, agree


def human_ceiling(counts: np.ndarray, weights: np.ndarray):
    """Leave-one-out agreement of one annotator with the majority of the others."""
    inst, agree = loo_instances(counts)
    w = np.asarray(weights, dtype=np.float64)
    return _ratio(w @ agree, w @ inst)


@lru_cache(maxsize=4096)
def loo_agrees(*, n_a: int, n_b: int, n_tie: int, choice: str) -> bool | None:
    """One vote's leave-one-out outcome given its pair's full tally (its own vote included).

    None when the vote is not decisive or the others have no decisive strict
    majority; else whether the vote matches the others' majority. Scalar and
    cached: it runs for every vote on the write path.
    """
    category = category_of(choice)
    if category == "tie":
        return None
    others = {"a": n_a, "b": n_b, "tie": n_tie}
    others[category] -= 1
    m = plurality(others["a"], others["b"], others["tie"])
    if m not in ("a", "b"):
        return None
    return m == category


def pick_of_margin(margin: float) -> str | None:
    """The side a reward margin r_a - r_b picks: "a", "b", or None on an exact tie."""
    return "a" if margin > 0 else "b" if margin < 0 else None


# --------------------------------------------------------------------------- #
# Intervals
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Estimate:
    value: float | None
    lo: float | None
    hi: float | None
    n: int  # the sample size behind the figure (pairs, votes or instances)

    def as_dict(self) -> dict:
        return {"value": self.value, "ci": [self.lo, self.hi], "n": self.n}


def _finite(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def bootstrap_estimate(
    stat: Callable[[np.ndarray, np.ndarray], object],
    counts: np.ndarray,
    weights: np.ndarray,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """The statistic and its percentile bootstrap CI, resampling pairs with >= 2 votes.

    Resampling N pairs with replacement is a multinomial draw of N over the
    buckets, so R resamples are one (R, B) matrix. The seed is fixed so the
    page shows the same interval on every load.
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    w = np.asarray(weights, dtype=np.float64) * (counts.sum(axis=1) >= 2)
    n_units = int(round(w.sum()))
    value = _finite(stat(counts, w)) if n_units else None
    if value is None or n_units < 2:
        return Estimate(value, None, None, n_units)
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(n_units, w / w.sum(), size=draws).astype(np.float64)
    values = np.asarray(stat(counts, resampled), dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < draws * 0.5:
        return Estimate(value, None, None, n_units)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return Estimate(value, float(lo), float(hi), n_units)


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial proportion k/n."""
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_excludes(k: int, n: int, p0: float, z: float = Z95) -> bool:
    """Whether the Wilson interval of k/n leaves out p0.

    The Wilson interval is the inversion of the score test, so this is
    (k - n p0)^2 > z^2 n p0 (1 - p0): plain arithmetic, no square root.
    """
    if n <= 0 or not 0 < p0 < 1:
        return False
    return (k - n * p0) ** 2 > z * z * n * p0 * (1 - p0)


def proportion(k: int, n: int) -> Estimate:
    """k/n with its Wilson interval."""
    lo, hi = wilson_interval(k, n)
    return Estimate(k / n if n else None, lo, hi, n)
