"""Red flags: the reasons not to trust the model or its labels, each with its numbers.

Pure functions over the figures the dashboard already assembled; no
queries. Every flag carries the numbers that raised it and the threshold it
crossed, so a reviewer can judge it instead of taking it on faith. The
thresholds are rules of thumb, set here in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# held-out accuracy this far below train accuracy: the model memorised its data
OVERFIT_GAP = 0.10
# the model prefers the longer response this much more often than humans do
LENGTH_BIAS_GAP = 0.10
# ensemble members pick different sides on this share of held-out pairs
ENSEMBLE_SPLIT_SHARE = 0.15
# mean std of the members' margins, when the split share is not reported
ENSEMBLE_SPREAD = 1.0
# a reward that moves this much when the two sides trade places
SWAP_TOLERANCE = 0.01
# more than this share of rewards at |z| > 5 (a normal gives ~6e-7)
EXTREME_SHARE = 0.001
# agreement needs this many pairs with two or more votes to mean anything
MIN_MULTI_VOTE_PAIRS = 30
# ... and at least this share of voted pairs to have two or more votes
MIN_MULTI_VOTE_SHARE = 0.5
# Krippendorff's alpha under this: labels close to chance
LOW_ALPHA = 0.2

WARN, SEVERE = "warn", "severe"


@dataclass
class RedFlag:
    code: str
    severity: str
    title: str
    detail: str
    numbers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def model_flags(metrics: dict, *, version_number: int | None) -> list[RedFlag]:
    """Flags from the active version's training metrics (`TrainResult.metrics`)."""
    flags: list[RedFlag] = []
    if not metrics:
        return flags
    where = f"version {version_number}" if version_number is not None else "the active version"
    held, train = metrics.get("held_out_accuracy"), metrics.get("train_accuracy")
    if held is not None and train is not None and train - held > OVERFIT_GAP:
        flags.append(
            RedFlag(
                "overfitting",
                SEVERE if train - held > 2 * OVERFIT_GAP else WARN,
                "Overfitting",
                f"Held-out accuracy {_pct(held)} is {_pct(train - held)} below train accuracy {_pct(train)} "
                f"({where}; threshold {_pct(OVERFIT_GAP)}).",
                {
                    "held_out_accuracy": held,
                    "train_accuracy": train,
                    "gap": train - held,
                    "threshold": OVERFIT_GAP,
                    "n_eval": metrics.get("n_eval"),
                },
            )
        )
    baseline = metrics.get("length_baseline_accuracy")
    if held is not None and baseline is not None and held <= baseline:
        flags.append(
            RedFlag(
                "below_length_baseline",
                SEVERE,
                'No better than "longer wins"',
                f"Held-out accuracy {_pct(held)} does not beat always picking the longer response ({_pct(baseline)}).",
                {"held_out_accuracy": held, "length_baseline_accuracy": baseline},
            )
        )
    p_model, p_human = metrics.get("p_model_prefers_longer"), metrics.get("p_human_prefers_longer")
    if p_model is not None and p_human is not None and p_model - p_human > LENGTH_BIAS_GAP:
        flags.append(
            RedFlag(
                "length_bias",
                SEVERE if p_model - p_human > 2 * LENGTH_BIAS_GAP else WARN,
                "Length bias",
                f"The model prefers the longer response {_pct(p_model)} of the time; humans {_pct(p_human)} "
                f"(threshold +{_pct(LENGTH_BIAS_GAP)}).",
                {"p_model_prefers_longer": p_model, "p_human_prefers_longer": p_human, "threshold": LENGTH_BIAS_GAP},
            )
        )
    split, spread = metrics.get("ensemble_split_share"), metrics.get("ensemble_disagreement")
    if (split is not None and split > ENSEMBLE_SPLIT_SHARE) or (
        split is None and spread is not None and spread > ENSEMBLE_SPREAD
    ):
        flags.append(
            RedFlag(
                "ensemble_disagreement",
                WARN,
                "Inconsistent: ensemble members disagree",
                f"Members pick different sides on {_pct(split)} of held-out pairs; mean margin spread "
                f"{spread if spread is None else round(spread, 3)}.",
                {
                    "ensemble_split_share": split,
                    "ensemble_disagreement": spread,
                    "thresholds": {"split_share": ENSEMBLE_SPLIT_SHARE, "spread": ENSEMBLE_SPREAD},
                },
            )
        )
    swap = metrics.get("swap_max_abs_diff")
    if swap is not None and swap > SWAP_TOLERANCE:
        flags.append(
            RedFlag(
                "swap_inconsistency",
                SEVERE,
                "Inconsistent: scores change when sides are swapped",
                f"A reward moved by {swap:.4f} when the two responses traded places (tolerance {SWAP_TOLERANCE}).",
                {"swap_max_abs_diff": swap, "threshold": SWAP_TOLERANCE},
            )
        )
    extreme = metrics.get("extreme_reward_share")
    if extreme is not None and extreme > EXTREME_SHARE:
        flags.append(
            RedFlag(
                "extreme_rewards",
                WARN,
                "Extreme rewards",
                f"{_pct(extreme)} of held-out rewards lie more than 5 standard deviations from the mean "
                f"(threshold {_pct(EXTREME_SHARE)}; mean {metrics.get('reward_mean')}, std {metrics.get('reward_std')}).",
                {
                    "extreme_reward_share": extreme,
                    "threshold": EXTREME_SHARE,
                    "reward_mean": metrics.get("reward_mean"),
                    "reward_std": metrics.get("reward_std"),
                },
            )
        )
    return flags


def label_flags(
    *, pairs_voted: int, pairs_multi: int, mean_votes: float | None, alpha: dict, position: dict
) -> list[RedFlag]:
    """Flags from the votes: too few overlapping votes, chance-level agreement, position bias."""
    flags: list[RedFlag] = []
    share = pairs_multi / pairs_voted if pairs_voted else 0.0
    if pairs_voted and (pairs_multi < MIN_MULTI_VOTE_PAIRS or share < MIN_MULTI_VOTE_SHARE):
        flags.append(
            RedFlag(
                "few_votes_per_pair",
                SEVERE if pairs_multi < MIN_MULTI_VOTE_PAIRS else WARN,
                "Too few votes per pair for agreement to mean anything",
                f"{pairs_multi} of {pairs_voted} voted pairs ({_pct(share)}) have two or more votes; mean "
                f"{mean_votes:.2f} votes per pair. Agreement needs at least {MIN_MULTI_VOTE_PAIRS} such pairs "
                f"and {_pct(MIN_MULTI_VOTE_SHARE)} of pairs.",
                {
                    "pairs_voted": pairs_voted,
                    "pairs_with_2_votes": pairs_multi,
                    "share": share,
                    "mean_votes_per_pair": mean_votes,
                    "thresholds": {"pairs": MIN_MULTI_VOTE_PAIRS, "share": MIN_MULTI_VOTE_SHARE},
                },
            )
        )
    value = alpha.get("value")
    if value is not None and pairs_multi >= MIN_MULTI_VOTE_PAIRS and value < LOW_ALPHA:
        flags.append(
            RedFlag(
                "low_agreement",
                WARN,
                "Annotators barely agree",
                f"Krippendorff's alpha is {value:.3f} (95% CI {alpha['ci'][0]:.3f} to {alpha['ci'][1]:.3f}, "
                f"{alpha['n']} pairs), under {LOW_ALPHA}: the labels are close to chance.",
                {"krippendorff_alpha": alpha, "threshold": LOW_ALPHA},
            )
        )
    flagged = position.get("flagged", 0)
    if flagged:
        expected = position.get("expected_by_chance", 0.0)
        flags.append(
            RedFlag(
                "position_bias",
                SEVERE if flagged > 2 * expected + 1 else WARN,
                "Position bias",
                f"{flagged} of {position.get('tested', 0)} annotators with at least {position.get('min_votes')} sided "
                f"votes have a 95% CI of P(left chosen) that excludes 0.5 (about {expected:.1f} would by chance alone).",
                {**position},
            )
        )
    return flags


def retraining_flags(*, paused_at: str | None, pause_reason: str) -> list[RedFlag]:
    """The scheduler paused itself after repeated failed runs: the model is going stale."""
    if not paused_at:
        return []
    return [
        RedFlag(
            "retraining_paused",
            SEVERE,
            "Automatic retraining is paused",
            f"{pause_reason} New votes are not reaching the model until an admin resumes it (runs page).",
            {"paused_at": paused_at},
        )
    ]


def red_flags(
    *,
    metrics: dict,
    version_number: int | None,
    pairs_voted: int,
    pairs_multi: int,
    mean_votes: float | None,
    alpha: dict,
    position: dict,
    paused_at: str | None = None,
    pause_reason: str = "",
) -> list[dict]:
    """All flags, severe first."""
    flags = (
        retraining_flags(paused_at=paused_at, pause_reason=pause_reason)
        + model_flags(metrics, version_number=version_number)
        + label_flags(
            pairs_voted=pairs_voted, pairs_multi=pairs_multi, mean_votes=mean_votes, alpha=alpha, position=position
        )
    )
    flags.sort(key=lambda f: f.severity != SEVERE)
    return [f.as_dict() for f in flags]
