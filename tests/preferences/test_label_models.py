"""Label models (preferences.label_models): what each returns, what gold does, the edge cases, the flag rule."""

from __future__ import annotations

import random

import pytest

from preferences.label_models import (
    LABEL_MODELS,
    MIN_VOTES_FOR_FLAG,
    UNRELIABLE_BELOW,
    LabelVote,
    label_model_fit,
    reliability_flagged,
)

CROWD = ("dawid_skene", "mace", "glad")


def flip(side: str) -> str:
    return "b" if side == "a" else "a"


def simulated(seed: int = 0, n_pairs: int = 150, per_pair: int = 3):
    """Six careful annotators (90% right), a random clicker and a 70%-careless one, three votes a pair."""
    rng = random.Random(seed)
    truth = {p: rng.choice("ab") for p in range(n_pairs)}
    accuracy = {f"good{i}": 0.9 for i in range(6)} | {"random": 0.5, "careless": 0.7}
    votes = []
    for pair, right_side in truth.items():
        for annotator in rng.sample(sorted(accuracy), per_pair):
            right = rng.random() < accuracy[annotator]
            votes.append(LabelVote(pair, annotator, right_side if right else flip(right_side)))
    return truth, votes


def test_unknown_model_choice_and_gold_answer_are_errors():
    vote = LabelVote(1, "x", "a")
    with pytest.raises(ValueError, match="unknown label model"):
        label_model_fit([vote], model="DawidSkene")
    with pytest.raises(ValueError, match="unknown choice"):
        label_model_fit([LabelVote(1, "x", "left")], model="majority")
    with pytest.raises(ValueError, match="gold answer"):
        label_model_fit([vote], model="dawid_skene", gold={1: "tie"})


def test_majority_is_the_label_rule_and_scores_leave_one_out():
    votes = [
        LabelVote(1, "x", "a"),
        LabelVote(1, "y", "a"),
        LabelVote(1, "z", "b"),  # pair 1: a wins 2-1
        LabelVote(2, "x", "a"),
        LabelVote(2, "y", "tie"),  # pair 2: a 1, tie 1 -> no winner
        LabelVote(3, "z", "b"),  # pair 3: one vote, b wins; nobody else to score z against
        LabelVote(4, "y", "both_bad"),
        LabelVote(4, "z", "both_bad"),  # pair 4: a tie label
    ]
    fit = label_model_fit(votes, model="majority")
    assert fit.p_a == {1: 1.0, 3: 0.0}
    # x on pair 1: the others (y a, z b) have no winner -> unscored; on pair 2 the other (y tie) is a tie -> unscored.
    # y on pair 1: others x a, z b -> unscored. z on pair 1: others a, a -> wrong.
    assert fit.decisive_votes == {"z": 1}
    assert fit.reliability == {"z": 0.0}


def test_majority_scores_gold_votes_against_the_answer_and_gives_gold_pairs_no_p_a():
    votes = [LabelVote(1, "x", "a"), LabelVote(1, "y", "a"), LabelVote(2, "x", "b")]
    fit = label_model_fit(votes, model="majority", gold={1: "b", 2: "b"})
    assert fit.p_a == {}
    assert fit.reliability == {"x": 0.5, "y": 0.0}
    assert fit.decisive_votes == {"x": 2, "y": 1}


@pytest.mark.parametrize("model", CROWD)
def test_crowd_models_recover_the_truth_and_rank_the_bad_annotators_last(model):
    truth, votes = simulated()
    fit = label_model_fit(votes, model=model)
    assert set(fit.p_a) == set(truth)
    assert all(0.0 <= p <= 1.0 for p in fit.p_a.values())
    correct = sum((p >= 0.5) == (truth[pair] == "a") for pair, p in fit.p_a.items())
    assert correct / len(truth) >= 0.9
    worst_two = sorted(fit.reliability, key=fit.reliability.get)[:2]
    assert set(worst_two) == {"random", "careless"}
    assert all(0.0 <= r <= 1.0 for r in fit.reliability.values())
    assert fit.reliability["random"] < min(r for a, r in fit.reliability.items() if a.startswith("good")) - 0.1
    assert sum(fit.decisive_votes.values()) == len(votes)


@pytest.mark.parametrize("model", LABEL_MODELS)
def test_fits_are_deterministic(model):
    _, votes = simulated(seed=3, n_pairs=60)
    assert label_model_fit(votes, model=model) == label_model_fit(votes, model=model)


@pytest.mark.parametrize("model", CROWD)
def test_ties_do_not_enter_and_tie_only_pairs_get_no_p_a(model):
    truth, votes = simulated(seed=1, n_pairs=60)
    with_ties = [*votes, LabelVote("tied", "good0", "tie"), LabelVote("tied", "good1", "both_bad")]
    with_ties += [LabelVote(0, "good5", "tie")]
    fit = label_model_fit(with_ties, model=model)
    assert "tied" not in fit.p_a
    assert fit == label_model_fit(votes, model=model)


def anchored_by_gold():
    """One annotator always right, two always wrong, on every pair: without gold the wrong pair outvotes."""
    truth = {p: "ab"[p % 2] for p in range(30)}
    votes = [LabelVote(p, "honest", side) for p, side in truth.items()]
    votes += [LabelVote(p, liar, flip(side)) for p, side in truth.items() for liar in ("liar1", "liar2")]
    gold = {p: truth[p] for p in range(20)}
    return truth, votes, gold


@pytest.mark.parametrize("model", ["dawid_skene", "glad"])
def test_gold_anchors_dawid_skene_and_glad(model):
    truth, votes, gold = anchored_by_gold()
    blind = label_model_fit(votes, model=model)
    assert blind.reliability["honest"] < blind.reliability["liar1"]
    assert all((blind.p_a[p] >= 0.5) != (truth[p] == "a") for p in truth)  # fooled on every pair

    seeded = label_model_fit(votes, model=model, gold=gold)
    assert seeded.reliability["honest"] > 0.9 > 0.1 > seeded.reliability["liar1"]
    assert set(seeded.p_a) == set(truth) - set(gold)  # gold pairs never get a training label
    assert all((seeded.p_a[p] >= 0.5) == (truth[p] == "a") for p in seeded.p_a)
    assert seeded.decisive_votes == {"honest": 30, "liar1": 30, "liar2": 30}


def test_mace_takes_gold_votes_as_ordinary_votes():
    truth, votes, gold = anchored_by_gold()
    seeded = label_model_fit(votes, model="mace", gold=gold)
    blind = label_model_fit(votes, model="mace")
    assert set(seeded.p_a) == set(truth) - set(gold)
    assert seeded.reliability == blind.reliability
    assert seeded.p_a == {p: v for p, v in blind.p_a.items() if p not in gold}


@pytest.mark.parametrize("model", LABEL_MODELS)
def test_no_votes_and_only_ties_give_an_empty_fit(model):
    assert label_model_fit([], model=model).p_a == {}
    fit = label_model_fit([LabelVote(1, "x", "tie"), LabelVote(2, "y", "both_bad")], model=model)
    assert fit.p_a == {}
    assert fit.reliability == {}


@pytest.mark.parametrize("model", CROWD)
def test_a_single_class_is_a_unanimous_fit(model):
    votes = [LabelVote(p, w, "a") for p in range(5) for w in ("x", "y")]
    fit = label_model_fit(votes, model=model)
    assert fit.p_a == dict.fromkeys(range(5), 1.0)
    assert fit.reliability == {"x": 1.0, "y": 1.0}
    assert fit.decisive_votes == {"x": 5, "y": 5}
    # a gold answer of the other side: the gold pair gets no p_a, and everyone was wrong on it
    fit = label_model_fit(votes, model=model, gold={0: "b"})
    assert fit.p_a == dict.fromkeys(range(1, 5), 1.0)
    assert fit.reliability == {"x": 0.8, "y": 0.8}


@pytest.mark.parametrize("model", CROWD)
def test_one_annotator_is_believed(model):
    votes = [LabelVote(p, "solo", "ab"[p % 2]) for p in range(10)]
    fit = label_model_fit(votes, model=model)
    assert all((fit.p_a[p] > 0.5) == (p % 2 == 0) for p in range(10))
    assert fit.reliability["solo"] > 0.5


def test_ids_may_be_strings_and_tuples():
    votes = [LabelVote(("p", i), f"user-{w}", "ab"[(i + w) % 3 == 0]) for i in range(20) for w in range(3)]
    fit = label_model_fit(votes, model="dawid_skene")
    assert set(fit.p_a) == {("p", i) for i in range(20)}
    assert set(fit.reliability) == {"user-0", "user-1", "user-2"}


def test_the_flag_rule():
    below, above = UNRELIABLE_BELOW - 0.01, UNRELIABLE_BELOW
    assert reliability_flagged(reliability=below, decisive_votes=MIN_VOTES_FOR_FLAG)
    assert not reliability_flagged(reliability=above, decisive_votes=MIN_VOTES_FOR_FLAG)
    assert not reliability_flagged(reliability=below, decisive_votes=MIN_VOTES_FOR_FLAG - 1)
    assert not reliability_flagged(reliability=None, decisive_votes=10_000)
