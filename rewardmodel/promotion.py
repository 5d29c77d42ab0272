"""Whether a newly trained version may go live: pure rules and paired statistics, no database.

The candidate is compared with the live version on the *same* held-out
pairs (the candidate's held-out set, with the labels it was evaluated
on), never with an accuracy the live version once had on other pairs.
Each pair is a paired observation: did the candidate pick the human
majority's side, did the reference version? That makes two tests:

- **Not significantly worse than the live version.** McNemar's exact test
  on the discordant pairs, one-sided (`scipy.stats.binomtest`: the exact
  McNemar test is the binomial test of "candidate right, reference wrong"
  among the pairs where exactly one of them is right). Below
  `min_pairs` shared pairs the test cannot tell, and the rule becomes
  "not worse on the same pairs".
- **No ratchet.** Not worse than the best of the last N versions that
  were live by more than `delta`, on the same pairs, so a run of slightly
  worse versions cannot each go live and drift quality down.

The 95% interval of the accuracy difference is a paired bootstrap
(`scipy.stats.bootstrap` over the per-pair differences), shown beside the
decision. The services score the versions and cache their margins; this
module only decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from preferences.agreement import pick_of_margin

# None here means the engine met a NaN or inf (it writes those as None) or
# had no held-out pairs: either way there is nothing sound to compare.
REQUIRED_FINITE = ("held_out_accuracy", "eval_loss", "reward_mean", "reward_std")
# The figures a run shows under `promotion`, in this order (run page and API).
FIGURES = ("n", "candidate_accuracy", "active_accuracy", "difference", "ci", "p_value", "decision", "reason")
PROMOTED, REFUSED = "promoted", "refused"
BOOTSTRAP_RESAMPLES = 4000


@dataclass(frozen=True)
class Reference:
    """A version to compare with: its number and its margin (r_a - r_b) on each pair it scored."""

    number: int
    margins: Mapping[int, float]


@dataclass(frozen=True)
class Paired:
    """The candidate against one reference version, on the pairs both scored."""

    number: int
    n: int
    candidate_correct: int
    reference_correct: int
    candidate_only: int  # pairs the candidate got right and the reference wrong
    reference_only: int
    differences: tuple[int, ...] = ()  # per pair: candidate right - reference right (-1, 0, 1)

    @property
    def candidate_accuracy(self) -> float | None:
        return self.candidate_correct / self.n if self.n else None

    @property
    def reference_accuracy(self) -> float | None:
        return self.reference_correct / self.n if self.n else None

    @property
    def difference(self) -> float | None:
        return (self.candidate_correct - self.reference_correct) / self.n if self.n else None


@dataclass(frozen=True)
class Decision:
    promote: bool
    note: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rules:
    delta: float = 0.0  # allowed drop below the best recent live version, on the same pairs
    alpha: float = 0.05  # McNemar: "significantly worse" below this p-value
    min_pairs: int = 30  # fewer shared pairs: too few to tell


def correct_on_pairs(margins: Mapping[int, float], winners: Mapping[int, str]) -> dict[int, bool]:
    """Per labelled pair, whether the margin (pair terms) picks the majority's side; 0 is a miss."""
    out = {}
    for pair_id, winner in winners.items():
        margin = margins.get(pair_id)
        if margin is None or not math.isfinite(margin):
            continue
        out[pair_id] = pick_of_margin(margin) == winner
    return out


def paired(candidate: Mapping[int, bool], reference: Reference, winners: Mapping[int, str]) -> Paired:
    """The candidate and `reference` on the pairs both have a score for."""
    theirs = correct_on_pairs(reference.margins, winners)
    shared = sorted(set(candidate) & set(theirs))
    diffs = tuple(int(candidate[p]) - int(theirs[p]) for p in shared)
    return Paired(
        number=reference.number,
        n=len(shared),
        candidate_correct=sum(candidate[p] for p in shared),
        reference_correct=sum(theirs[p] for p in shared),
        candidate_only=diffs.count(1),
        reference_only=diffs.count(-1),
        differences=diffs,
    )


def mcnemar_p_worse(candidate_only: int, reference_only: int) -> float:
    """One-sided exact McNemar p-value for "the candidate is worse than the reference".

    Under H0 each discordant pair is a fair coin, so the count the candidate
    wins is Binomial(candidate_only + reference_only, 1/2); small p means it
    wins too few of them to be as good.
    """
    discordant = candidate_only + reference_only
    if discordant == 0:
        return 1.0
    from scipy.stats import binomtest  # scipy loads in the worker only, when a decision is made

    return float(binomtest(candidate_only, discordant, 0.5, alternative="less").pvalue)


def difference_ci(differences: Sequence[int], *, confidence: float = 0.95, seed: int = 0) -> list[float] | None:
    """Paired bootstrap (percentile) interval of the mean per-pair difference; None without pairs."""
    if not differences:
        return None
    if min(differences) == max(differences):  # every resample gives the same mean
        value = float(differences[0])
        return [value, value]
    import numpy as np
    from scipy.stats import bootstrap

    result = bootstrap(
        (np.asarray(differences, dtype=float),),
        np.mean,
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def non_finite_metrics(metrics: dict[str, Any]) -> list[str]:
    """Names of required metrics that are missing or not finite, and of any NaN/inf anywhere."""
    bad = [name for name in REQUIRED_FINITE if not _is_finite_number(metrics.get(name))]
    bad += [path for path in _nan_paths(metrics, "") if path not in bad]
    return bad


def promotion_decide(
    *,
    metrics: dict[str, Any],
    candidate_margins: Mapping[int, float],
    winners: Mapping[int, str],
    active: Reference | None,
    recent: Sequence[Reference] = (),
    rules: Rules = Rules(),
) -> Decision:
    """Promote or not, with the paired figures against the live version.

    `winners` labels the candidate's held-out pairs (a or b); `active` is
    the live version with its margins on them (None when nothing is live);
    `recent` are the last versions that were live, the ratchet's bar.
    """
    candidate = correct_on_pairs(candidate_margins, winners)
    bad = non_finite_metrics(metrics)
    if bad:
        reason = f"Not promoted: metrics not finite or missing ({', '.join(bad)})."
        return _decision(False, reason, n=len(candidate), candidate=_share(candidate))
    if active is None:
        reason = f"Promoted: first version (held-out accuracy {_share(candidate):.3f} on {len(candidate)} pairs)."
        return _decision(True, reason, n=len(candidate), candidate=_share(candidate))

    live = paired(candidate, active, winners)
    figures = {
        "n": live.n,
        "candidate": live.candidate_accuracy,
        "active": live.reference_accuracy,
        "difference": live.difference,
        "ci": difference_ci(live.differences),
        "p_value": mcnemar_p_worse(live.candidate_only, live.reference_only) if live.n else None,
    }
    same_pairs = f"on the same {live.n} held-out pairs" if live.n else ""
    if live.n == 0:
        verdict = True, f"the live v{active.number} has no score on these held-out pairs, so nothing to compare"
    elif live.n < rules.min_pairs:
        worse = live.candidate_correct < live.reference_correct
        verdict = (
            not worse,
            f"too few held-out pairs to tell ({live.n} < {rules.min_pairs}); {_vs(live, active.number)} "
            f"{same_pairs}: {'worse' if worse else 'not worse'}",
        )
    else:
        significant = figures["p_value"] < rules.alpha
        verdict = (
            not significant,
            f"{_vs(live, active.number)} {same_pairs}, McNemar exact p = {figures['p_value']:.3g} "
            f"({'significantly worse' if significant else 'not significantly worse'} at {rules.alpha:g})",
        )
    promote, why = verdict
    if promote:
        blocked = _ratchet(candidate, recent, winners, rules.delta)
        if blocked:
            promote, why = False, f"{why}; but {blocked}"
    reason = f"{'Promoted' if promote else 'Not promoted'}: {why}."
    return _decision(promote, reason, **figures)


def _ratchet(
    candidate: Mapping[int, bool], recent: Sequence[Reference], winners: Mapping[int, str], delta: float
) -> str | None:
    """Why the candidate falls more than `delta` below the best recent live version, or None."""
    comparisons = [c for c in (paired(candidate, r, winners) for r in recent) if c.n]
    if not comparisons:
        return None
    # A small tolerance keeps 0.80 - 0.01 == 0.79 from failing on float rounding.
    shortfalls = [c for c in comparisons if c.candidate_accuracy < c.reference_accuracy - delta - 1e-9]
    if not shortfalls:
        return None
    worst = min(shortfalls, key=lambda c: c.difference)
    return (
        f"v{worst.number}, live within the last {len(recent)} live versions, scored {worst.reference_accuracy:.3f} "
        f"on the same {worst.n} pairs, where the candidate scored {worst.candidate_accuracy:.3f} "
        f"(more than {delta:.3f} below it)"
    )


def _vs(live: Paired, number: int) -> str:
    return f"candidate {live.candidate_accuracy:.3f} vs live v{number} {live.reference_accuracy:.3f}"


def _share(correct: Mapping[int, bool]) -> float | None:
    return sum(correct.values()) / len(correct) if correct else None


def _decision(
    promote: bool,
    reason: str,
    *,
    n: int,
    candidate: float | None,
    active: float | None = None,
    difference: float | None = None,
    ci: list[float] | None = None,
    p_value: float | None = None,
) -> Decision:
    figures = {
        "n": n,
        "candidate_accuracy": candidate,
        "active_accuracy": active,
        "difference": difference,
        "ci": ci,
        "p_value": p_value,
        "decision": PROMOTED if promote else REFUSED,
        "reason": reason,
    }
    return Decision(promote, reason, figures)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _nan_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "metrics"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nan_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nan_paths(v, f"{path}[{i}]")]
    return []
