"""Votes: stored in pair terms, exactly once, only on your own lease."""
import pytest

from labeling import services
from labeling.errors import Conflict, InvalidInput
from labeling.models import Pair, Vote

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


@pytest.mark.parametrize("screen, expected_for_left_a", [("left", "a"), ("right", "b"), ("tie", "tie"), ("both_bad", "both_bad")])
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
    vote, _ = services.vote_submit(
        assignment_id=assignment.pk, user=annotator_user, choice="left", latency_ms=10**9
    )
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
