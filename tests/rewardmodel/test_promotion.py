"""The promotion rule, on its own."""

import math

import pytest

from rewardmodel.promotion import non_finite_metrics, promotion_decide

GOOD = {"held_out_accuracy": 0.80, "eval_loss": 0.45, "reward_mean": 0.1, "reward_std": 1.2}


def test_first_version_goes_live_when_its_metrics_are_finite():
    # given no active version / when deciding / then it is promoted
    decision = promotion_decide(new_metrics=GOOD, active_metrics=None, delta=0.01)
    assert decision.promote and "first version" in decision.note


@pytest.mark.parametrize(
    "new, old, promote",
    [(0.80, 0.80, True), (0.79, 0.80, True), (0.7899, 0.80, False), (0.95, 0.80, True), (0.50, 0.80, False)],
)
def test_new_version_may_be_at_most_delta_below_the_active_one(new, old, promote):
    # given an active version at `old` and a delta of one point
    # when a version scoring `new` is decided
    decision = promotion_decide(
        new_metrics={**GOOD, "held_out_accuracy": new}, active_metrics={**GOOD, "held_out_accuracy": old}, delta=0.01
    )
    # then it goes live only within the delta, and the note says why
    assert decision.promote is promote
    assert f"{new:.3f}" in decision.note and f"{old:.3f}" in decision.note


@pytest.mark.parametrize(
    "metrics, culprit",
    [
        ({**GOOD, "eval_loss": None}, "eval_loss"),  # the engine writes NaN as None
        ({**GOOD, "held_out_accuracy": None}, "held_out_accuracy"),
        ({**GOOD, "reward_std": float("nan")}, "reward_std"),
        ({**GOOD, "reliability": [{"accuracy": math.inf}]}, "reliability[0].accuracy"),
    ],
)
def test_a_version_with_non_finite_metrics_is_never_promoted(metrics, culprit):
    # given metrics with a NaN / missing value, even with no active version
    decision = promotion_decide(new_metrics=metrics, active_metrics=None, delta=1.0)
    # then it is not promoted, naming the metric
    assert not decision.promote
    assert culprit in decision.note
    assert culprit in non_finite_metrics(metrics)


def test_an_active_version_without_accuracy_does_not_block_a_sound_one():
    decision = promotion_decide(new_metrics=GOOD, active_metrics={"held_out_accuracy": None}, delta=0.01)
    assert decision.promote
