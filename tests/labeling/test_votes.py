"""Votes: stored in pair terms, exactly once, only on your own lease."""

import pytest

from labeling import services
from labeling.models import Pair, Side, Vote
from lib.errors import Conflict, InvalidInput

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


@pytest.mark.parametrize(
    "screen, expected_for_left_a", [("left", "a"), ("right", "b"), ("tie", "tie"), ("both_bad", "both_bad")]
)
def test_screen_choice_is_stored_in_pair_terms(project, pairs, annotator_user, screen, expected_for_left_a):
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice=screen)
    flip = {"a": "b", "b": "a"}
    expected = expected_for_left_a if assignment.left == "a" else flip.get(expected_for_left_a, expected_for_left_a)
    assert vote.choice == expected
    assert vote.shown_left == assignment.left


def test_double_submit_gives_one_vote(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    first, created1 = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    second, created2 = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    assert (created1, created2) == (True, False)
    assert first.pk == second.pk
    assert Vote.objects.count() == 1
    assert Pair.objects.get(pk=assignment.pair_id).vote_count == 1


def test_changing_your_mind_after_voting_is_a_conflict(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    with pytest.raises(Conflict):
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="right")
    assert Vote.objects.get().choice == assignment.left


def test_vote_on_someone_elses_lease_is_refused_and_writes_nothing(project, pairs, annotator_user, annotator_user2):
    theirs = services.assignment_next(project=project, user=annotator_user)
    with pytest.raises(Conflict):
        services.vote_submit(assignment_id=theirs.pk, user=annotator_user2, choice="left")
    with pytest.raises(Conflict):
        services.vote_submit(assignment_id=999_999, user=annotator_user2, choice="left")
    assert Vote.objects.count() == 0


def test_project_switches_limit_the_choices(project, pairs, annotator_user):
    project.allow_tie = False
    project.save()
    assignment = services.assignment_next(project=project, user=annotator_user)
    with pytest.raises(InvalidInput):
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="tie")
    with pytest.raises(InvalidInput):  # strength not asked for
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left", strength=2)
    assert Vote.objects.count() == 0


def test_strength_and_rationale_are_recorded_when_asked(project, pairs, annotator_user):
    project.ask_strength = project.ask_rationale = True
    project.save()
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(
        assignment_id=assignment.pk, user=annotator_user, choice="right", strength=3, rationale=" clearer "
    )
    vote.refresh_from_db()
    assert (vote.strength, vote.rationale) == (3, "clearer")


def test_latency_is_capped_by_the_servers_clock(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left", latency_ms=10**9)
    assert vote.latency_ms < 60_000


def test_database_forbids_a_second_vote_by_the_same_annotator(project, pairs, annotator_user):
    from django.db import IntegrityError, transaction

    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(project=project, pair=vote.pair, annotator=vote.annotator, choice="b")


@pytest.mark.parametrize("durable, expected", [(True, "on"), (False, "off")])
def test_durable_votes_setting_decides_whether_the_commit_waits_for_the_disk(
    project, pairs, annotator_user, settings, durable, expected
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite in WAL mode with synchronous=NORMAL never syncs on commit")
    settings.LABELING_DURABLE_VOTES = durable
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, created = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    assert created and Vote.objects.filter(pk=vote.pk).exists()
    # the test's transaction is the vote's: its commit would wait for the flush only when durable
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        assert cursor.fetchone()[0] == expected


@pytest.mark.parametrize("durable, expected", [(True, "on"), (False, "off")])
def test_durable_votes_setting_holds_for_a_late_vote_on_an_expired_lease(
    project, pairs, annotator_user, settings, durable, expected
):
    """The full path's writes (sql.vote_record) honour the setting too."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    if connection.vendor != "postgresql":
        pytest.skip("SQLite in WAL mode with synchronous=NORMAL never syncs on commit")
    settings.LABELING_DURABLE_VOTES = durable
    assignment = services.assignment_next(project=project, user=annotator_user)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 5)
    services.assignments_reclaim_expired(now=later)
    vote, created = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left", now=later)
    assert created and Vote.objects.filter(pk=vote.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        assert cursor.fetchone()[0] == expected


@pytest.mark.parametrize(
    "choice, strength, rationale, latency_ms, expected_latency",
    [
        ("left", 2, "clearer", 1500, 1500),
        ("right", None, "", None, 5000),  # no client figure: the server's
        ("tie", None, "", 10**9, 5000),  # over the server's: capped
        ("both_bad", None, "", 0, 0),
    ],
)
def test_the_one_statement_vote_stores_what_the_full_path_stores(
    project,
    pairs,
    annotator_user,
    annotator_user2,
    monkeypatch,
    choice,
    strength,
    rationale,
    latency_ms,
    expected_latency,
):
    """On PostgreSQL a vote on a live lease is one statement (sql.vote_record_on_live_lease);
    the full path (lock, check, record) handles the rest. Both must store the same."""
    from datetime import timedelta

    from django.db import connection

    from labeling import sql
    from labeling.models import Assignment

    project.ask_strength = project.ask_rationale = True
    project.save()
    one_statement = sql.vote_record_on_live_lease
    took_one_statement = []

    def spy(**kwargs):
        vote = one_statement(**kwargs)
        took_one_statement.append(vote is not None)
        return vote

    def stored(user) -> tuple:
        assignment = services.assignment_next(project=project, user=user)
        before = Pair.objects.get(pk=assignment.pair_id)
        vote, created = services.vote_submit(
            assignment_id=assignment.pk,
            user=user,
            choice=choice,
            strength=strength,
            rationale=rationale,
            latency_ms=latency_ms,
            now=assignment.served_at + timedelta(seconds=5),
        )
        row, after = Vote.objects.get(pk=vote.pk), Pair.objects.get(pk=assignment.pair_id)
        fields = ("choice", "shown_left", "strength", "rationale", "latency_ms", "in_aggregates")
        assert [getattr(vote, f) for f in fields] == [getattr(row, f) for f in fields]  # returned as stored
        screen = {assignment.left: "left", assignment.right: "right"}
        counted = {
            "votes": after.vote_count - before.vote_count,
            screen[Side.A]: after.votes_a - before.votes_a,
            screen[Side.B]: after.votes_b - before.votes_b,
            "tie": after.votes_tie - before.votes_tie,
        }
        return (
            created,
            screen.get(row.choice, row.choice),
            row.shown_left == assignment.left,
            row.strength,
            row.rationale,
            row.latency_ms,
            row.in_aggregates,
            Assignment.objects.get(pk=assignment.pk).state,
            counted,
        )

    monkeypatch.setattr(sql, "vote_record_on_live_lease", spy)
    one_statement_vote = stored(annotator_user)
    monkeypatch.setattr(sql, "vote_record_on_live_lease", lambda **kwargs: None)
    full_path_vote = stored(annotator_user2)

    assert took_one_statement == [connection.vendor == "postgresql"]
    assert one_statement_vote == full_path_vote
    is_tie = choice in ("tie", "both_bad")
    assert one_statement_vote == (
        True,
        choice,
        True,
        strength,
        rationale,
        expected_latency,
        False,
        "voted",
        {"votes": 1, "left": int(choice == "left"), "right": int(choice == "right"), "tie": int(is_tie)},
    )
