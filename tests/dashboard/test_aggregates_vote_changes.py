"""Undone and changed votes in the dashboard aggregates: counted as the final choice, exactly as a rebuild."""

from __future__ import annotations

import random

import pytest

from accounts import roles
from dashboard import aggregates
from dashboard.aggregates import aggregates_check, on_version_activated
from dashboard.models import AnnotatorStats
from labeling import services
from labeling.models import Pair, Vote, VoteChange
from rewardmodel.models import ModelVersion, PairPrediction, TrainingRun
from tests.conftest import make_records, make_user
from tests.dashboard.test_dashboard_aggregates import buckets_from_pairs, snapshot

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def three_annotators(django_user_model, project, annotator_user, annotator_user2):
    carol = make_user(django_user_model, "carol", roles.ANNOTATOR)
    project.members.add(carol)
    return [annotator_user, annotator_user2, carol]


def consistent(project) -> None:
    """The aggregates equal a rebuild (manage.py check_aggregates) and the pairs' own counters."""
    assert aggregates_check(project=project) == {}
    assert snapshot(project)["buckets"] == buckets_from_pairs(project)
    assert not VoteChange.objects.filter(project=project, uncount_pending=True).exists()


def test_an_undone_folded_vote_is_taken_out_by_the_next_fold(project, pairs, annotator_user):
    # given alice's only vote, folded in
    assignment = services.assignment_next(project=project, user=annotator_user)
    services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left", latency_ms=3000)
    aggregates.aggregates_fold(project_id=project.pk)
    assert AnnotatorStats.objects.get(project=project).votes == 1
    # when she undoes it
    services.vote_undo(assignment_id=assignment.pk, user=annotator_user)
    # then the aggregates still count it until the fold, which owes them one change
    assert VoteChange.objects.get().uncount_pending is True
    assert sum(snapshot(project)["buckets"].values()) == 1
    assert aggregates.aggregates_fold(project_id=project.pk) == 1
    # and after it nothing of hers is left: no bucket, no annotator row, as a rebuild would have it
    assert snapshot(project)["buckets"] == {}
    assert not AnnotatorStats.objects.filter(project=project).exists()
    consistent(project)


def test_a_changed_folded_vote_counts_as_its_new_choice(project, three_annotators):
    # given three votes for a on a project's only pair, folded
    alice, bob, carol = three_annotators
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    stored = []
    for user in three_annotators:
        a = services.assignment_next(project=project, user=user)
        screen = "left" if a.left == "a" else "right"
        stored.append(services.vote_submit(assignment_id=a.pk, user=user, choice=screen, latency_ms=2500)[0])
    aggregates.aggregates_fold(project_id=project.pk)
    # when carol changes hers to b
    vote = stored[2]
    services.vote_change(vote_id=vote.pk, user=carol, choice="right" if vote.shown_left == "a" else "left")
    aggregates.aggregates_fold(project_id=project.pk)
    # then the pair is (2 a, 1 b), carol disagrees with the others' majority, and all equals a rebuild
    assert snapshot(project)["buckets"] == {(vote.pair.split, 2, 1, 0): 1}
    carol_stats = AnnotatorStats.objects.get(project=project, annotator__user=carol)
    assert (carol_stats.votes, carol_stats.loo_n, carol_stats.loo_agree) == (1, 1, 0)
    consistent(project)


def test_a_vote_changed_twice_before_the_fold_is_counted_once(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    aggregates.aggregates_fold(project_id=project.pk)
    services.vote_change(vote_id=vote.pk, user=annotator_user, choice="right")
    services.vote_change(vote_id=vote.pk, user=annotator_user, choice="tie")
    # only the first change found the vote counted: one old vote to take out
    assert VoteChange.objects.filter(uncount_pending=True).count() == 1
    aggregates.aggregates_fold(project_id=project.pk, batch=1)
    assert AnnotatorStats.objects.get(project=project).ties == 1
    consistent(project)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_votes_undos_changes_and_folds_in_any_order_match_a_rebuild(project, three_annotators, seed):
    """Random interleavings of votes, undos, changes and folds (in small batches): after every fold
    the aggregates equal a rebuild, and the pair counters equal the votes."""
    rng = random.Random(seed)
    services.pairs_import_batch(project=project, records=make_records(8, votes=1), shuffle_sides=False)
    for _ in range(120):
        user = rng.choice(three_annotators)
        action = rng.random()
        if action < 0.5:
            assignment = services.assignment_next(project=project, user=user)
            if assignment is not None:
                services.vote_submit(
                    assignment_id=assignment.pk,
                    user=user,
                    choice=rng.choice(["left", "right", "tie", "both_bad"]),
                    latency_ms=rng.randint(200, 20_000),
                )
        elif action < 0.65:
            mine = list(Vote.objects.filter(project=project, annotator__user=user, assignment__isnull=False))
            if mine:
                services.vote_undo(assignment_id=rng.choice(mine).assignment_id, user=user)
        elif action < 0.85:
            mine = list(Vote.objects.filter(project=project, annotator__user=user, assignment__isnull=False))
            if mine:
                vote = rng.choice(mine)
                services.vote_change(vote_id=vote.pk, user=user, choice=rng.choice(["left", "right", "tie"]))
        else:
            aggregates.aggregates_fold(project_id=project.pk, batch=rng.choice([1, 2, 5, 2000]))
            assert aggregates_check(project=project) == {}
    # then, folded, every figure is the final choices' and every counter the votes'
    aggregates.aggregates_fold(project_id=project.pk)
    consistent(project)
    assert VoteChange.objects.filter(project=project).count() > 10
    for pair in Pair.objects.filter(project=project):
        assert pair.vote_count == pair.votes.count()


def test_activation_with_a_change_pending_matches_a_rebuild(db, django_user_model):
    # given held-out pairs with votes, one of them changed after it was folded
    project = services.project_create(slug="pending", test_percent=90, overlap_target=3)
    services.pairs_import_batch(project=project, records=make_records(10, votes=1), shuffle_sides=False)
    users = [make_user(django_user_model, f"u{i}", roles.ANNOTATOR) for i in range(2)]
    project.members.add(*users)
    cast = []
    for user in users:
        while (a := services.assignment_next(project=project, user=user)) is not None:
            cast.append(services.vote_submit(assignment_id=a.pk, user=user, choice="left")[0])
    aggregates.aggregates_fold(project_id=project.pk)
    services.vote_change(vote_id=cast[0].pk, user=users[0], choice="right")
    services.vote_undo(assignment_id=cast[-1].assignment_id, user=users[1])
    # when a version goes live before the fold has taken the old votes out
    run = TrainingRun.objects.create(project=project, trigger="admin", status="succeeded")
    version = ModelVersion.objects.create(project=project, run=run, number=1, artifact_dir="/nowhere", metrics={})
    test_pairs = Pair.objects.filter(project=project, split="test")
    PairPrediction.objects.bulk_create([PairPrediction(version=version, pair=p, margin=1.0) for p in test_pairs])
    on_version_activated(version=version)
    # then the fold that follows leaves the model figures equal to a rebuild
    aggregates.aggregates_fold(project_id=project.pk)
    consistent(project)


def test_a_rebuild_with_a_change_pending_leaves_it_to_the_fold(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    aggregates.aggregates_fold(project_id=project.pk)
    services.vote_change(vote_id=vote.pk, user=annotator_user, choice="right")
    # a rebuild counts what the fold would find: the old vote pending, the new one folded by the rebuild
    aggregates.aggregates_rebuild(project=project)
    assert VoteChange.objects.get().uncount_pending is True
    assert AnnotatorStats.objects.get(project=project).votes == 2
    # and the next fold takes the old one out
    assert aggregates.aggregates_fold(project_id=project.pk) == 1
    assert AnnotatorStats.objects.get(project=project).votes == 1
    consistent(project)
