"""The promotion rules and their paired statistics, on their own (rewardmodel.promotion)."""

import math

import pytest
from statsmodels.stats.contingency_tables import mcnemar

from rewardmodel.promotion import (
    FIGURES,
    Reference,
    Rules,
    correct_on_pairs,
    difference_ci,
    mcnemar_p_worse,
    non_finite_metrics,
    promotion_decide,
)

GOOD = {"held_out_accuracy": 0.80, "eval_loss": 0.45, "reward_mean": 0.1, "reward_std": 1.2}


def margins_with(n: int, right: set[int]) -> dict[int, float]:
    """Margins on pairs 0..n-1 (every winner is a): positive (right) on `right`, negative elsewhere."""
    return {i: (1.0 if i in right else -1.0) for i in range(n)}


def winners_a(n: int) -> dict[int, str]:
    return dict.fromkeys(range(n), "a")


def test_first_version_goes_live_when_its_metrics_are_finite():
    # given no live version / when deciding / then it is promoted, with every figure named
    decision = promotion_decide(
        metrics=GOOD, candidate_margins=margins_with(4, {0, 1, 2}), winners=winners_a(4), active=None
    )
    assert decision.promote and "first version" in decision.note
    assert tuple(decision.figures) == FIGURES
    assert decision.figures["decision"] == "promoted" and decision.figures["candidate_accuracy"] == 0.75


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
    # given metrics with a NaN / missing value, even with no live version
    decision = promotion_decide(metrics=metrics, candidate_margins={}, winners={}, active=None)
    # then it is not promoted, naming the metric
    assert not decision.promote and decision.figures["decision"] == "refused"
    assert culprit in decision.note
    assert culprit in non_finite_metrics(metrics)


def test_accuracies_measured_on_different_pairs_are_never_compared():
    # given the demo's case: v1 was right on its 5 original pairs, and on the 8 pairs of
    # today's held-out set it is right on 7, as is the candidate
    winners = winners_a(8)
    live = Reference(1, margins_with(8, {0, 1, 2, 3, 4, 5, 6}))
    candidate = margins_with(8, {0, 1, 2, 3, 4, 5, 7})
    # when the candidate is decided against it
    decision = promotion_decide(metrics=GOOD, candidate_margins=candidate, winners=winners, active=live, recent=[live])
    # then they are compared on the same 8 pairs, equal, and the candidate goes live
    assert decision.promote, decision.note
    assert decision.figures["n"] == 8
    assert decision.figures["candidate_accuracy"] == decision.figures["active_accuracy"] == 0.875
    assert "too few held-out pairs to tell" in decision.note


def test_with_few_pairs_a_candidate_worse_on_the_same_pairs_is_refused():
    # given 10 shared pairs: the live version right on 8, the candidate on 7
    live = Reference(3, margins_with(10, set(range(8))))
    candidate = margins_with(10, set(range(7)))
    # when decided
    decision = promotion_decide(metrics=GOOD, candidate_margins=candidate, winners=winners_a(10), active=live)
    # then it is refused, saying why, with the paired figures
    assert not decision.promote
    assert decision.note.startswith("Not promoted: too few held-out pairs to tell (10 < 30)")
    figures = decision.figures
    assert figures["n"] == 10 and figures["difference"] == pytest.approx(-0.1)
    assert figures["candidate_accuracy"] == 0.7 and figures["active_accuracy"] == 0.8
    assert figures["ci"][0] <= -0.1 <= figures["ci"][1]
    assert 0 < figures["p_value"] <= 1


def test_only_pairs_both_versions_scored_count():
    # given a live version with no score on half of the candidate's pairs (its files were pruned)
    live = Reference(1, dict.fromkeys(range(5), 1.0))
    decision = promotion_decide(
        metrics=GOOD, candidate_margins=margins_with(10, set(range(10))), winners=winners_a(10), active=live
    )
    # then the comparison is on the 5 shared pairs
    assert decision.figures["n"] == 5 and decision.promote


def test_many_pairs_not_significantly_worse_goes_live_when_delta_allows():
    # given 200 shared pairs: candidate right on 150, live on 152, discordant 4 vs 6; delta 0.02
    live = Reference(2, margins_with(200, set(range(152))))
    candidate = margins_with(200, set(range(146)) | set(range(152, 156)))
    decision = promotion_decide(
        metrics=GOOD,
        candidate_margins=candidate,
        winners=winners_a(200),
        active=live,
        recent=[live],
        rules=Rules(delta=0.02),
    )
    # then McNemar cannot tell them apart, the drop is within delta, and it goes live
    assert decision.promote, decision.note
    assert "not significantly worse" in decision.note
    assert decision.figures["p_value"] > 0.05


def test_many_pairs_significantly_worse_is_refused():
    # given 100 shared pairs: live right on 90, candidate on 70 (the 20 it loses are all discordant)
    live = Reference(2, margins_with(100, set(range(90))))
    candidate = margins_with(100, set(range(70)))
    decision = promotion_decide(
        metrics=GOOD, candidate_margins=candidate, winners=winners_a(100), active=live, rules=Rules(delta=1.0)
    )
    # then it is refused on the test alone, even with a delta that would allow anything
    assert not decision.promote
    assert "significantly worse" in decision.note and decision.figures["p_value"] < 1e-5


def test_quality_cannot_ratchet_down_one_small_step_at_a_time():
    # given v1 right on 900 of 1,000 pairs, and five candidates, each 0.9 points worse than the
    # one before while right and wrong on different pairs (so no single step is significant),
    # with an allowed drop of 0.9 points: the old rule let every one of them go live
    winners = winners_a(1000)
    live = Reference(1, margins_with(1000, set(range(900))))
    recent = [live]
    promoted, notes = [], []
    for k in range(1, 6):
        candidate = margins_with(1000, {(50 * k + j) % 1000 for j in range(900 - 9 * k)})
        decision = promotion_decide(
            metrics=GOOD,
            candidate_margins=candidate,
            winners=winners,
            active=live,
            recent=recent,
            rules=Rules(delta=0.009),
        )
        notes.append(decision.note)
        if decision.promote:
            promoted.append(k + 1)
            live = Reference(k + 1, candidate)
            recent = [live, *recent][:5]
    # then only the first step is taken: the next is not significantly worse than the live v2,
    # but 1.8 points below v1, the best recent live version
    assert promoted == [2]
    assert "not significantly worse" in notes[1] and "but v1" in notes[1]


def test_the_ratchet_names_the_version_that_set_the_bar():
    v1 = Reference(1, margins_with(10, set(range(9))))
    v2 = Reference(2, margins_with(10, set(range(7))))
    candidate = margins_with(10, set(range(8)))
    decision = promotion_decide(
        metrics=GOOD, candidate_margins=candidate, winners=winners_a(10), active=v2, recent=[v2, v1]
    )
    # better than the live v2, but below v1 on the same pairs
    assert not decision.promote
    assert "v1" in decision.note and "0.900" in decision.note and "0.800" in decision.note


def test_one_sided_mcnemar_matches_statsmodels_two_sided_exact_test():
    # given discordant counts where the candidate wins fewer
    for cand_only, ref_only in [(3, 9), (0, 6), (10, 25), (5, 5)]:
        table = [[50, cand_only], [ref_only, 40]]
        two_sided = mcnemar(table, exact=True).pvalue
        # then our one-sided p is half the two-sided one when the candidate wins fewer
        assert mcnemar_p_worse(cand_only, ref_only) == pytest.approx(min(1.0, two_sided / 2), abs=1e-12) or (
            cand_only == ref_only and mcnemar_p_worse(cand_only, ref_only) > 0.5
        )
    assert mcnemar_p_worse(0, 0) == 1.0


def test_difference_ci_is_a_paired_bootstrap_around_the_mean_difference():
    differences = [1] * 10 + [-1] * 4 + [0] * 86
    low, high = difference_ci(differences)
    assert low < 0.06 < high and high - low < 0.2
    assert difference_ci([0, 0, 0]) == [0.0, 0.0]
    assert difference_ci([]) is None
    assert difference_ci(differences) == [low, high]  # seeded: the same every time


def test_a_zero_margin_is_a_miss_and_b_winners_need_negative_margins():
    assert correct_on_pairs({1: 0.0, 2: -0.5, 3: 0.5}, {1: "a", 2: "b", 3: "b"}) == {1: False, 2: True, 3: False}
