import json
import math

import numpy as np
import pytest

from rewardmodel.training.evaluate import (
    bootstrap_ci,
    calibration,
    disagreement_summary,
    ensemble_margins,
    length_buckets,
    pair_metrics,
)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_ece_and_reliability_match_a_hand_computation():
    # confidences sigmoid(|m|): two pairs near 0.52 (one right, one wrong),
    # one at 0.88 (right), one at 0.98 (wrong)
    margins = np.array([0.1, -0.1, 2.0, -4.0])
    ece, bins = calibration(margins)
    c1, c2, c3 = sigmoid(0.1), sigmoid(2.0), sigmoid(4.0)
    expected = 2 / 4 * abs(0.5 - c1) + 1 / 4 * abs(1 - c2) + 1 / 4 * abs(0 - c3)
    assert ece == pytest.approx(expected)
    assert [b["count"] for b in bins] == [2, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert bins[0] == {"bin_lo": 0.5, "bin_hi": 0.55, "confidence": pytest.approx(c1), "accuracy": 0.5, "count": 2}
    assert bins[1]["accuracy"] is None and bins[1]["confidence"] is None


def test_bootstrap_ci_brackets_the_point_estimate():
    correct = (np.random.default_rng(3).random(400) < 0.7).astype(float)
    lo, hi = bootstrap_ci(correct)
    assert lo < correct.mean() < hi
    assert 0.05 < hi - lo < 0.12  # about 2 * 1.96 * sqrt(.7 * .3 / 400) = 0.09
    assert bootstrap_ci(np.array([])) == [None, None]


def test_length_baseline_and_preferences_for_longer():
    r_chosen = np.array([1.0, 1.0, 0.0, 2.0])
    r_rejected = np.array([0.0, 2.0, 1.0, 0.0])  # the model is right on pairs 0 and 3
    chosen_tokens, rejected_tokens = [10, 5, 20, 7], [5, 10, 10, 7]  # pair 3: equal lengths
    m = pair_metrics(r_chosen, r_rejected, chosen_tokens, rejected_tokens)
    assert m["held_out_accuracy"] == 0.5
    assert m["length_baseline_accuracy"] == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert m["p_human_prefers_longer"] == pytest.approx(2 / 3)  # of the 3 unequal pairs
    # model prefers: pair 0 chosen (longer), pair 1 rejected (longer), pair 2 rejected (shorter)
    assert m["p_model_prefers_longer"] == pytest.approx(2 / 3)
    assert m["eval_loss"] == pytest.approx(np.mean([math.log1p(math.exp(-x)) for x in (1, -1, -1, 2)]))
    rewards = np.concatenate([r_chosen, r_rejected])
    assert m["reward_mean"] == pytest.approx(rewards.mean()) and m["reward_std"] == pytest.approx(rewards.std())
    assert m["extreme_reward_share"] == 0.0
    json.dumps(m, allow_nan=False)


def test_extreme_rewards_are_counted_by_z_score():
    r_chosen = np.concatenate([np.zeros(99), [100.0]])
    m = pair_metrics(r_chosen, np.zeros(100), [1] * 100, [1] * 100)
    assert m["extreme_reward_share"] == pytest.approx(1 / 200)


def test_length_buckets_split_by_token_difference():
    margins = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    diff = np.array([-100, -20, 0, 20, 100])
    buckets = length_buckets(margins, diff)
    assert [b["count"] for b in buckets] == [1, 1, 1, 1, 1]
    assert [b["accuracy"] for b in buckets] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert buckets[0]["lo"] is None and buckets[-1]["hi"] is None


def test_empty_eval_gives_none_not_nan():
    empty = np.array([])
    m = pair_metrics(empty, empty, [], [])
    assert m["held_out_accuracy"] is None and m["ece"] is None and m["reward_std"] is None
    json.dumps(m, allow_nan=False)


def test_ensemble_disagreement_is_the_members_spread():
    member_margins = np.array([[1.0, 2.0, -1.0], [3.0, 2.0, 1.0]])
    mean, spread = ensemble_margins(member_margins)
    assert mean.tolist() == [2.0, 2.0, 0.0] and spread.tolist() == [1.0, 0.0, 1.0]
    summary = disagreement_summary(member_margins, spread)
    assert summary == {"ensemble_disagreement": pytest.approx(2 / 3), "ensemble_split_share": pytest.approx(1 / 3)}
    single, none = ensemble_margins(member_margins[:1])
    assert none is None and disagreement_summary(member_margins[:1], none)["ensemble_disagreement"] is None
