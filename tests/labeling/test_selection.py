"""Next-pair selection and leases: the rules of who sees which pair when."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from scipy.stats import binomtest

from labeling import services
from labeling.models import Assignment, Pair, Vote
from lib.errors import Conflict
from tests.conftest import make_records, make_user

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


def test_left_side_is_randomised_about_half_the_time(project, annotator_user):
    # given 1,000 pairs
    services.pairs_import_batch(project=project, records=make_records(1000), shuffle_sides=False)
    # when the annotator is served each of them once
    lefts = []
    for _ in range(1000):
        assignment = services.assignment_next(project=project, user=annotator_user)
        lefts.append(assignment.left)
        services.assignment_skip(assignment_id=assignment.pk, user=annotator_user)
    # then the left side is "a" about half the time (two-sided binomial test)
    n_a = lefts.count("a")
    assert binomtest(n_a, 1000, 0.5).pvalue > 0.001, n_a
    assert services.assignment_next(project=project, user=annotator_user) is None


def test_never_serves_a_pair_already_seen(project, pairs, annotator_user):
    # when the annotator votes through the whole project
    seen = []
    while (assignment := services.assignment_next(project=project, user=annotator_user)) is not None:
        seen.append(assignment.pair_id)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    # then each pair came exactly once
    assert sorted(seen) == sorted(p.pk for p in pairs)


def test_repeated_next_returns_the_live_lease(project, pairs, annotator_user):
    first = services.assignment_next(project=project, user=annotator_user)
    again = services.assignment_next(project=project, user=annotator_user)
    assert again.pk == first.pk
    assert Pair.objects.get(pk=first.pair_id).slots_taken == 1


def test_overlap_target_counts_votes_and_live_leases(project, django_user_model):
    # given one pair, K=2, and three annotators
    project.overlap_target = 2
    project.save()
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    users = [make_user(django_user_model, f"u{i}", "annotator") for i in range(3)]
    project.members.add(*users)
    # when two lease it (one votes, one holds the lease)
    first = services.assignment_next(project=project, user=users[0])
    services.vote_submit(assignment_id=first.pk, user=users[0], choice="right")
    second = services.assignment_next(project=project, user=users[1])
    # then the third gets nothing: 1 vote + 1 live lease = K
    assert second is not None
    assert services.assignment_next(project=project, user=users[2]) is None


def test_expired_lease_returns_the_pair_to_the_pool(project, django_user_model):
    project.overlap_target = 1
    project.save()
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    u1, u2 = (make_user(django_user_model, name, "annotator") for name in ("x1", "x2"))
    project.members.add(u1, u2)
    abandoned = services.assignment_next(project=project, user=u1)
    assert services.assignment_next(project=project, user=u2) is None
    # when the lease runs out
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    taken_over = services.assignment_next(project=project, user=u2, now=later)
    # then the pair goes to someone else, and the first lease is expired
    assert taken_over is not None and taken_over.pair_id == abandoned.pair_id
    abandoned.refresh_from_db()
    assert abandoned.state == Assignment.State.EXPIRED
    # and a late vote on the expired lease is refused: the pair is full again
    with pytest.raises(Conflict):
        services.vote_submit(assignment_id=abandoned.pk, user=u1, choice="left", now=later)
    assert Vote.objects.count() == 0


def test_late_vote_on_expired_lease_is_kept_when_the_pair_has_room(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 5)
    services.assignments_reclaim_expired(now=later)
    vote, created = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="tie", now=later)
    assert created and vote.choice == "tie"
    pair = Pair.objects.get(pk=assignment.pair_id)
    assert (pair.slots_taken, pair.vote_count, pair.votes_tie) == (1, 1, 1)


def test_skip_releases_the_slot_and_hides_the_pair(project, pairs, annotator_user):
    assignment = services.assignment_next(project=project, user=annotator_user)
    services.assignment_skip(assignment_id=assignment.pk, user=annotator_user)
    assert Pair.objects.get(pk=assignment.pair_id).slots_taken == 0
    served = set()
    while (a := services.assignment_next(project=project, user=annotator_user)) is not None:
        served.add(a.pair_id)
        services.assignment_skip(assignment_id=a.pk, user=annotator_user)
    assert assignment.pair_id not in served


def test_least_served_pairs_come_first(project, annotator_user):
    # given pairs that already have imported votes, and pairs with none
    services.pairs_import_batch(project=project, records=make_records(3, votes=1, prefix="voted"), shuffle_sides=False)
    services.pairs_import_batch(project=project, records=make_records(3, prefix="fresh"), shuffle_sides=False)
    # then the fresh ones are served first
    assignment = services.assignment_next(project=project, user=annotator_user)
    assert assignment.pair.vote_count == 0


def test_selection_query_walks_the_queue_index(project, pairs, annotator_user):
    # The candidate query must be an ordered index range scan, not a scan of
    # every pair in the project sorted afterwards.
    if connection.vendor != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    with CaptureQueriesContext(connection) as ctx:
        services.assignment_next(project=project, user=annotator_user)
    candidate_sql = next(
        q["sql"] for q in ctx.captured_queries if q["sql"].startswith("UPDATE labeling_pair") and "ORDER BY" in q["sql"]
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + candidate_sql)
        plan = " | ".join(row[-1] for row in cursor.fetchall())
    assert "pair_queue_idx" in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_lease_statement_walks_the_queue_index_on_postgresql(project, pairs, annotator_user):
    # The same check for PostgreSQL's one-statement lease (sql.LEASE_STATEMENT_POSTGRESQL).
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan; SQLite's is checked above")
    import json

    from labeling import sql

    statement = sql.LEASE_STATEMENT_POSTGRESQL
    params = {
        "project": project.pk,
        "k": 3,
        "annotator": 1,
        "left": "a",
        "served": timezone.now(),
        "expires": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_pair")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table; ask which index the planner can walk
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
        plan = json.dumps(cursor.fetchone()[0])
    assert "pair_queue_idx" in plan, plan
    assert '"Node Type": "Sort"' not in plan, plan


def test_own_lease_left_past_its_time_is_expired_and_a_fresh_pair_served(project, pairs, annotator_user):
    first = services.assignment_next(project=project, user=annotator_user)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    # when the same annotator asks again after their lease ran out
    second = services.assignment_next(project=project, user=annotator_user, now=later)
    # then the old lease is expired, its slot given back, and a pair they have not seen is served
    first.refresh_from_db()
    assert first.state == Assignment.State.EXPIRED
    assert Pair.objects.get(pk=first.pair_id).slots_taken == 0
    assert second.state == Assignment.State.LIVE and second.pair_id != first.pair_id
    assert services.assignment_next(project=project, user=annotator_user, now=later).pk == second.pk


def test_pairs_left_for_you_walks_the_queue_index_and_stops_at_the_cap(project, pairs, annotator_user):
    # "N pairs left for you" must cost what a pick costs, whatever the project's size: the pick's
    # index range, read up to the cap (sql.PAIRS_OPEN_COUNT). Checked on both databases' plans.
    import json

    from labeling import selectors, sql

    lease = services.assignment_next(project=project, user=annotator_user)
    assert selectors.pairs_left_for_annotator(project=project, user=annotator_user, holding=True) == len(pairs)
    # enough pairs that reading the whole project would cost the planner more than walking the index
    services.pairs_import_batch(project=project, records=make_records(3000, prefix="many"), shuffle_sides=False)
    assert sql.pairs_open_count(project_id=project.pk, annotator_id=lease.annotator_id, overlap_target=3, cap=5) == 5
    params = {"project": project.pk, "k": 3, "annotator": lease.annotator_id, "cap": 51}
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql.PAIRS_OPEN_COUNT, params)
            plan = " | ".join(row[-1] for row in cursor.fetchall())
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
        else:
            cursor.execute("ANALYZE labeling_pair")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql.PAIRS_OPEN_COUNT, params)
            plan = json.dumps(cursor.fetchone()[0])
            assert '"Node Type": "Sort"' not in plan, plan
    assert "pair_queue_idx" in plan, plan
