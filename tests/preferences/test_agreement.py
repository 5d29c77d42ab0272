"""Agreement statistics against the reference packages (krippendorff, statsmodels)."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from preferences import agreement as ag
from preferences.labels import Tally

CODES = {"a": 0, "b": 1, "tie": 2, "both_bad": 2}


def reliability_data(matrix: list[list[str | None]]) -> np.ndarray:
    """Raters x pairs with NaN for a missing vote, as the krippendorff package takes it."""
    return np.array([[np.nan if v is None else CODES[v] for v in row] for row in matrix], dtype=float).T


def per_pair(matrix: list[list[str | None]]) -> list[list[str]]:
    return [[v for v in row if v is not None] for row in matrix]


def brute_force_winner(votes: list[str]) -> str | None:
    """The label rule written out the long way, as an oracle: a strict plurality of a or b."""
    counts: dict[str, int] = {}
    for v in votes:
        key = "tie" if v == "both_bad" else v
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    leaders = [k for k, n in counts.items() if n == top]
    return leaders[0] if len(leaders) == 1 and leaders[0] in ("a", "b") else None


def brute_force_ceiling(pairs: list[list[str]]) -> float:
    """Each decisive vote against the strict majority of the others, one by one."""
    inst = agree = 0
    for votes in pairs:
        for i, v in enumerate(votes):
            if ag.category_of(v) == "tie" or len(votes) < 2:
                continue
            others = brute_force_winner(votes[:i] + votes[i + 1 :])
            if others is None:
                continue
            inst += 1
            agree += others == v
    return agree / inst if inst else math.nan


choice = st.sampled_from(["a", "b", "tie", "both_bad"])
full_matrix = st.integers(2, 6).flatmap(
    lambda raters: st.lists(st.lists(choice, min_size=raters, max_size=raters), min_size=2, max_size=60)
)
sparse_matrix = st.integers(2, 7).flatmap(
    lambda raters: st.lists(
        st.lists(st.one_of(st.none(), choice), min_size=raters, max_size=raters), min_size=2, max_size=60
    )
)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # statsmodels on one category
@settings(max_examples=150, deadline=None)
@given(full_matrix)
def test_fleiss_kappa_equals_statsmodels_with_equal_votes_per_pair(matrix):
    # given every pair voted by the same number of raters, ties and both-bad included
    counts, weights = ag.tally_histogram(matrix)
    table = np.array([[sum(ag.category_of(v) == c for v in row) for c in ag.CATEGORIES] for row in matrix])
    # when both compute kappa
    expected = sm_fleiss_kappa(table, method="fleiss")
    ours = ag.fleiss_kappa(counts, weights)
    # then they agree (both undefined when only one category was ever used)
    if math.isfinite(expected) and abs(1 - (table.sum(0) / table.sum()) @ (table.sum(0) / table.sum())) > 1e-12:
        assert ours == pytest.approx(expected, abs=1e-9)
    else:
        assert not math.isfinite(ours)


@settings(max_examples=150, deadline=None)
@given(sparse_matrix)
def test_krippendorff_alpha_equals_the_package_with_missing_votes(matrix):
    # given raters who skip some pairs (NaN), with ties
    pairs = per_pair(matrix)
    counts, weights = ag.tally_histogram(pairs)
    data = reliability_data(matrix)
    pairable = [p for p in pairs if len(p) >= 2]
    categories = {ag.category_of(v) for p in pairable for v in p}
    # when alpha is computed from the tally histogram
    ours = ag.krippendorff_alpha(counts, weights)
    # then it equals the package's value whenever alpha is defined
    if len(categories) >= 2:
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert ours == pytest.approx(expected, abs=1e-9)
    else:
        assert not math.isfinite(ours)


def test_fleiss_generalisation_reduces_to_per_item_formula_with_unequal_votes():
    # given pairs with 2, 3 and 4 votes
    pairs = [["a", "a"], ["a", "b", "tie"], ["b", "b", "b", "a"], ["tie", "both_bad", "a"]]
    counts, weights = ag.tally_histogram(pairs)
    # when kappa and percent agreement are computed by hand from the definitions
    table = np.array([[sum(ag.category_of(v) == c for v in p) for c in ag.CATEGORIES] for p in pairs], float)
    n = table.sum(1)
    p_i = ((table**2).sum(1) - n) / (n * (n - 1))
    p_j = table.sum(0) / table.sum()
    expected_kappa = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    # then the histogram versions agree
    assert ag.percent_agreement(counts, weights) == pytest.approx(p_i.mean())
    assert ag.fleiss_kappa(counts, weights) == pytest.approx(expected_kappa)


@settings(max_examples=100, deadline=None)
@given(sparse_matrix)
def test_human_ceiling_equals_brute_force_leave_one_out(matrix):
    # given pairs with any number of votes
    pairs = per_pair(matrix)
    counts, weights = ag.tally_histogram(pairs)
    # when the ceiling is computed from the histogram and vote by vote
    expected = brute_force_ceiling(pairs)
    ours = ag.human_ceiling(counts, weights)
    # then both agree
    if math.isnan(expected):
        assert not math.isfinite(ours)
    else:
        assert ours == pytest.approx(expected)


@given(st.lists(choice, max_size=8))
def test_majority_of_a_histogram_is_the_label_rule(votes):
    # given any votes on a pair, when the majority is computed from its row of a tally histogram
    counts = ag.tally_histogram([votes])[0]
    index = int(ag.majority(counts)[0]) if len(counts) else -1
    # then it names the pair's label, and the label's winner is the long-hand rule's
    label = Tally.of(votes).label
    assert index == (-1 if label is None else ag.CATEGORIES.index(label))
    assert Tally.of(votes).winner == brute_force_winner(votes)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    # given 300 pairs of three votes with moderate agreement
    rng = np.random.default_rng(0)
    truth = rng.choice(["a", "b"], size=300)
    pairs = [[t if rng.random() < 0.8 else rng.choice(["a", "b", "tie"]) for _ in range(3)] for t in truth]
    counts, weights = ag.tally_histogram(pairs)
    # when the bootstrap runs twice
    first = ag.bootstrap_estimate(ag.krippendorff_alpha, counts, weights)
    second = ag.bootstrap_estimate(ag.krippendorff_alpha, counts, weights)
    # then the interval holds the estimate, is narrow-ish, and is stable
    assert first == second
    assert first.lo < first.value < first.hi
    assert 0.02 < first.hi - first.lo < 0.3
    assert first.n == 300


def test_bootstrap_needs_pairs_with_two_votes():
    counts, weights = ag.tally_histogram([["a"], ["b"]])
    estimate = ag.bootstrap_estimate(ag.fleiss_kappa, counts, weights)
    assert (estimate.value, estimate.lo, estimate.hi, estimate.n) == (None, None, None, 0)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (50, 100), (99, 100), (100, 100), (7, 1000)])
def test_wilson_interval_equals_statsmodels(k, n):
    assert ag.wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-9)


@pytest.mark.parametrize("k,n", [(0, 10), (2, 10), (3, 10), (58, 100), (60, 100), (70, 100), (500, 1000)])
def test_wilson_excludes_matches_the_interval(k, n):
    lo, hi = ag.wilson_interval(k, n)
    assert ag.wilson_excludes(k, n, 0.5) == (not lo <= 0.5 <= hi)
