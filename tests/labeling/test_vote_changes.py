"""Undo and change of a vote: the lease comes back, every counter stays exact, an audit record is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, Pair, Vote, VoteChange
from lib.errors import Conflict, InvalidInput, NotFound
from tests.conftest import make_records

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


def pair_counters_match_votes(project) -> None:
    """Every pair's counters equal what its votes and live leases say."""
    for pair in Pair.objects.filter(project=project):
        votes = list(Vote.objects.filter(pair=pair).values_list("choice", flat=True))
        live = Assignment.objects.filter(pair=pair, state=Assignment.State.LIVE).count()
        assert pair.vote_count == len(votes), pair
        assert (pair.votes_a, pair.votes_b) == (votes.count("a"), votes.count("b")), pair
        assert pair.votes_tie == len(votes) - votes.count("a") - votes.count("b"), pair
        assert pair.slots_taken == len(votes) + live <= project.overlap_target, pair


def vote(project, user, choice="left", **kwargs):
    assignment = services.assignment_next(project=project, user=user)
    stored, _ = services.vote_submit(assignment_id=assignment.pk, user=user, choice=choice, **kwargs)
    return assignment, stored


def test_undo_brings_the_pair_back_with_the_earlier_choice(project, pairs, annotator_user):
    # given a vote, after which the next pair was leased (as vote-and-next does)
    first, stored = vote(project, annotator_user, "right")
    following = services.assignment_next(project=project, user=annotator_user)
    assert following.pk != first.pk
    # when the annotator undoes it
    undone = services.vote_undo(assignment_id=first.pk, user=annotator_user)
    # then the same lease is theirs again, live, with what they had picked
    assert undone.assignment.pk == first.pk
    assert undone.assignment.state == Assignment.State.LIVE
    assert undone.assignment.expires_at > timezone.now()
    assert (undone.choice, undone.strength) == ("right", None)
    assert undone.assignment.pair.prompt == first.pair.prompt
    # and the vote is gone, the next pair given back to the pool, and asking again returns the undone pair
    assert not Vote.objects.filter(pk=stored.pk).exists()
    assert not Assignment.objects.filter(pk=following.pk).exists()
    assert services.assignment_next(project=project, user=annotator_user).pk == first.pk
    pair_counters_match_votes(project)
    # and the undo is recorded: who, when, the old choice, no new one
    change = VoteChange.objects.get()
    assert (change.action, change.changed_by, change.old_choice, change.new_choice) == (
        "undo",
        annotator_user,
        stored.choice,
        "",
    )
    assert (change.vote_id, change.pair_id, change.shown_left) == (stored.pk, stored.pair_id, stored.shown_left)
    assert change.uncount_pending is False  # never folded into the dashboard: nothing to take out


def test_voting_again_after_an_undo_stores_the_new_choice(project, pairs, annotator_user):
    first, stored = vote(project, annotator_user, "left")
    services.vote_undo(assignment_id=first.pk, user=annotator_user)
    # when they vote again on the same lease
    again, created = services.vote_submit(assignment_id=first.pk, user=annotator_user, choice="tie")
    # then one vote, the new one, and the counters follow
    assert created and again.choice == "tie"
    assert list(Vote.objects.filter(pair=first.pair_id).values_list("choice", flat=True)) == ["tie"]
    pair_counters_match_votes(project)


def test_undo_after_the_window_is_refused_and_writes_nothing(project, pairs, annotator_user, settings):
    # given a vote cast eleven minutes ago, with a ten-minute window
    settings.LABELING_UNDO_SECONDS = 600
    first, stored = vote(project, annotator_user, "left")
    Vote.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    # when they try to undo it, then a Conflict, and nothing changes
    with pytest.raises(Conflict, match="10 minutes"):
        services.vote_undo(assignment_id=first.pk, user=annotator_user)
    assert Vote.objects.filter(pk=stored.pk).exists()
    assert not VoteChange.objects.exists()
    assert Assignment.objects.get(pk=first.pk).state == Assignment.State.VOTED


def test_undo_of_someone_elses_or_no_vote_is_refused(project, pairs, annotator_user, annotator_user2):
    first, _ = vote(project, annotator_user, "left")
    with pytest.raises(Conflict, match="not assigned to you"):
        services.vote_undo(assignment_id=first.pk, user=annotator_user2)
    live = services.assignment_next(project=project, user=annotator_user)
    with pytest.raises(Conflict, match="no vote"):
        services.vote_undo(assignment_id=live.pk, user=annotator_user)
    assert Vote.objects.count() == 1 and not VoteChange.objects.exists()


def test_undo_last_walks_back_and_says_when_there_is_nothing(project, pairs, annotator_user):
    with pytest.raises(Conflict, match="no vote to undo"):
        services.vote_undo_last(project=project, user=annotator_user)
    first, _ = vote(project, annotator_user, "left")
    second, _ = vote(project, annotator_user, "right")
    # the last vote first, then the one before (the lease held in between goes back)
    assert services.vote_undo_last(project=project, user=annotator_user).assignment.pk == second.pk
    assert services.vote_undo_last(project=project, user=annotator_user).assignment.pk == first.pk
    assert Vote.objects.count() == 0
    assert list(Assignment.objects.filter(state="live").values_list("pk", flat=True)) == [first.pk]
    pair_counters_match_votes(project)


def test_a_removed_member_cannot_undo(project, pairs, annotator_user):
    first, _ = vote(project, annotator_user, "left")
    project.members.remove(annotator_user)
    with pytest.raises(NotFound):
        services.vote_undo(assignment_id=first.pk, user=annotator_user)
    assert Vote.objects.count() == 1


def test_change_moves_the_counters_and_is_recorded(project, pairs, annotator_user):
    # given a vote for the left response
    first, stored = vote(project, annotator_user, "left")
    # when the annotator changes it to the right one
    changed = services.vote_change(vote_id=stored.pk, user=annotator_user, choice="right")
    # then it names the other response, the pair's counters moved, and the change is recorded
    assert changed.choice != stored.choice and changed.choice in ("a", "b")
    assert Vote.objects.get(pk=stored.pk).choice == changed.choice
    pair_counters_match_votes(project)
    record = VoteChange.objects.get()
    assert (record.action, record.old_choice, record.new_choice) == ("change", stored.choice, changed.choice)
    # and changing to what it already is writes nothing
    services.vote_change(vote_id=stored.pk, user=annotator_user, choice="right")
    assert VoteChange.objects.count() == 1


def test_change_is_checked_like_a_vote(project, pairs, annotator_user, annotator_user2, settings):
    _, stored = vote(project, annotator_user, "left")
    with pytest.raises(NotFound):  # not hers
        services.vote_change(vote_id=stored.pk, user=annotator_user2, choice="right")
    with pytest.raises(InvalidInput, match="does not ask for a strength"):
        services.vote_change(vote_id=stored.pk, user=annotator_user, choice="right", strength=2)
    with pytest.raises(InvalidInput, match="choice must be"):
        services.vote_change(vote_id=stored.pk, user=annotator_user, choice="a")
    Vote.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    with pytest.raises(Conflict, match="older"):
        services.vote_change(vote_id=stored.pk, user=annotator_user, choice="right")
    assert not VoteChange.objects.exists()
    assert Vote.objects.get(pk=stored.pk).choice == stored.choice


def test_a_new_strength_alone_leaves_the_dashboard_count_as_it_is(db, annotator_user):
    # given a project that asks for strength, and a folded vote
    from dashboard import aggregates

    project = services.project_create(slug="strong", ask_strength=True)
    project.members.add(annotator_user)
    services.pairs_import_batch(project=project, records=make_records(2), shuffle_sides=False)
    _, stored = vote(project, annotator_user, "left", strength=1)
    aggregates.aggregates_fold(project_id=project.pk)
    # when only the strength changes
    services.vote_change(vote_id=stored.pk, user=annotator_user, choice="left", strength=3)
    # then the vote stays counted (the aggregates hold no strength) and the change is recorded
    vote_row = Vote.objects.get(pk=stored.pk)
    assert (vote_row.strength, vote_row.in_aggregates) == (3, True)
    record = VoteChange.objects.get()
    assert (record.old_strength, record.new_strength, record.uncount_pending) == (1, 3, False)
