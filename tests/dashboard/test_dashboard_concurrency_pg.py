"""Dashboard aggregates under concurrent votes on the same pairs, on PostgreSQL."""

import random
import threading

import pytest
from django.db import connection

from dashboard import aggregates
from labeling import services
from preferences.records import ImportedVote, PreferenceRecord
from tests.conftest import make_records, make_user
from tests.dashboard.test_dashboard_aggregates import buckets_from_pairs, snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

THREADS = 12


def _vote_until_done(project, user, seed: int) -> None:
    """One annotator votes left, right or tie until nothing is left for them."""
    rng = random.Random(seed)
    while (assignment := services.assignment_next(project=project, user=user)) is not None:
        services.vote_submit(assignment_id=assignment.pk, user=user, choice=rng.choice(["left", "right", "tie"]))


def _fold_until(done: threading.Event, project, folded: list[int]) -> None:
    """The beat task's work, over and over, while the others run (as in production, beside live votes)."""
    while not done.is_set():
        folded.append(aggregates.aggregates_fold(project_id=project.pk, batch=7))


def _thread(barrier: threading.Barrier, errors: list[BaseException], work, *args) -> threading.Thread:
    """A thread that starts `work` with the others, records what it raises, and closes its connection."""

    def run():
        try:
            barrier.wait()
            work(*args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


def test_concurrent_votes_leave_aggregates_equal_to_a_rebuild(django_user_model):
    # given 20 pairs with K=3 and 12 annotators voting at once, ties included
    project = services.project_create(slug="race-agg", name="Race", overlap_target=3)
    services.pairs_import_batch(project=project, records=make_records(20), shuffle_sides=False)
    users = [make_user(django_user_model, f"agg{i}", "annotator") for i in range(THREADS)]
    project.members.add(*users)
    barrier = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []
    done = threading.Event()

    # when they all vote, while votes are folded into the aggregates in small batches
    threads = [_thread(barrier, errors, _vote_until_done, project, u, i) for i, u in enumerate(users)]
    folded: list[int] = []
    folder = _thread(barrier, errors, _fold_until, done, project, folded)
    for t in [*threads, folder]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    folder.join(timeout=120)

    # then nothing failed, and once the last votes are folded the aggregates equal a rebuild
    assert errors == [] and sum(folded) > 0  # the folder ran beside the writers
    aggregates.aggregates_fold(project_id=project.pk)
    live = snapshot(project)
    assert sum(live["buckets"].values()) == 20
    assert live["buckets"] == buckets_from_pairs(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)


def test_dashboard_payload_on_postgres(project, django_user_model):
    # given imported and live votes and an activated version, on PostgreSQL
    from dashboard.selectors import dashboard_payload
    from tests.dashboard.dashboard_data import populate

    populate(project, django_user_model)
    aggregates.aggregates_fold(project_id=project.pk)  # as every dashboard read does first
    live = snapshot(project)
    # when the aggregates are rebuilt and the payload assembled
    aggregates.aggregates_rebuild(project=project)
    payload = dashboard_payload(project=project)
    # then the running figures equal the rebuild and every figure is there
    assert live == snapshot(project)
    assert payload["model_vs_human"]["n"] > 0 and payload["krippendorff_alpha"]["value"] is not None
    assert payload["annotators"]["rows"][0]["annotator"] == "lefty"


def test_votes_and_an_import_on_the_same_pairs_do_not_deadlock_and_match_a_rebuild(django_user_model):
    # Live votes and import batches add votes to the same pairs, both taking
    # the pairs' row locks, while a fold and the imports take the project's
    # aggregate lock.
    project = services.project_create(slug="race-import", name="Race", overlap_target=4)
    records = make_records(30)
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    users = [make_user(django_user_model, f"imp{i}", "annotator") for i in range(8)]
    project.members.add(*users)
    barrier = threading.Barrier(len(users) + 2)
    errors: list[BaseException] = []
    done = threading.Event()

    def import_votes():
        for batch in range(6):  # each batch: a new external annotator votes on every pair
            voted = [
                PreferenceRecord(r.prompt, r.response_a, r.response_b, (ImportedVote(f"bulk-{batch}", "b"),))
                for r in records
            ]
            services.pairs_import_batch(project=project, records=voted, shuffle_sides=False)

    threads = [_thread(barrier, errors, _vote_until_done, project, u, i) for i, u in enumerate(users)]
    threads.append(_thread(barrier, errors, import_votes))
    folded: list[int] = []
    folder = _thread(barrier, errors, _fold_until, done, project, folded)
    for t in [*threads, folder]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    folder.join(timeout=120)

    assert errors == [] and sum(folded) > 0  # the folder ran beside the writers
    aggregates.aggregates_fold(project_id=project.pk)
    live = snapshot(project)
    assert live["buckets"] == buckets_from_pairs(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)


def _label_undo_and_change(project, user, seed: int, rounds: int) -> None:
    """One annotator votes, and now and then undoes a vote (voting again or skipping) or changes one."""
    rng = random.Random(seed)
    for _ in range(rounds):
        assignment = services.assignment_next(project=project, user=user)
        if assignment is None:
            return
        vote, _ = services.vote_submit(assignment_id=assignment.pk, user=user, choice=rng.choice(["left", "right"]))
        roll = rng.random()
        if roll < 0.3:
            undone = services.vote_undo(assignment_id=assignment.pk, user=user)
            if rng.random() < 0.5:
                services.vote_submit(assignment_id=undone.assignment.pk, user=user, choice="tie")
            else:
                services.assignment_skip(assignment_id=undone.assignment.pk, user=user)
        elif roll < 0.5:
            services.vote_change(vote_id=vote.pk, user=user, choice=rng.choice(["left", "right", "both_bad"]))


def _watch_k(done: threading.Event, project, over: list) -> None:
    """Read, in one statement (one snapshot), every pair's votes plus live leases against K."""
    from django.db.models import Count, Q

    from labeling.models import Pair

    while not done.is_set():
        counted = Pair.objects.filter(project=project).annotate(
            votes_n=Count("votes", distinct=True),
            live_n=Count("assignments", filter=Q(assignments__state="live"), distinct=True),
        )
        over += [p.pk for p in counted if p.votes_n + p.live_n > project.overlap_target]


def test_undo_and_change_beside_new_leases_and_folds_keep_k_and_the_aggregates(django_user_model):
    # given 25 pairs with K=2 and 10 annotators who vote, undo (then vote again or skip) and change at once,
    # with the fold running beside them and a watcher reading every pair's votes and leases
    from django.db.models import Count, Q

    from dashboard.aggregates import aggregates_check
    from labeling.models import Pair, VoteChange

    project = services.project_create(slug="race-undo", name="Race", overlap_target=2)
    services.pairs_import_batch(project=project, records=make_records(25), shuffle_sides=False)
    users = [make_user(django_user_model, f"undo{i}", "annotator") for i in range(10)]
    project.members.add(*users)
    barrier = threading.Barrier(len(users) + 2)
    errors: list[BaseException] = []
    done = threading.Event()
    folded: list[int] = []
    over: list[int] = []
    threads = [_thread(barrier, errors, _label_undo_and_change, project, u, i, 40) for i, u in enumerate(users)]
    helpers = [
        _thread(barrier, errors, _fold_until, done, project, folded),
        _thread(barrier, errors, _watch_k, done, project, over),
    ]
    # when they all run
    for t in [*threads, *helpers]:
        t.start()
    for t in threads:
        t.join(timeout=180)
    done.set()
    for t in helpers:
        t.join(timeout=120)

    # then nothing failed, K held at every instant watched, and the counters equal the rows
    assert errors == []
    assert over == []
    assert VoteChange.objects.filter(project=project, action="undo").exists()
    assert VoteChange.objects.filter(project=project, action="change").exists()
    rows = Pair.objects.filter(project=project).annotate(
        votes_n=Count("votes", distinct=True),
        live_n=Count("assignments", filter=Q(assignments__state="live"), distinct=True),
    )
    for pair in rows:
        assert pair.vote_count == pair.votes_n
        assert pair.slots_taken == pair.votes_n + pair.live_n <= 2, pair
        choices = list(pair.votes.values_list("choice", flat=True))
        assert (pair.votes_a, pair.votes_b) == (choices.count("a"), choices.count("b"))
    # and once folded, the aggregates equal a rebuild and the pair counters (check_aggregates' test)
    assert sum(folded) > 0
    assert aggregates_check(project=project) == {}
    assert snapshot(project)["buckets"] == buckets_from_pairs(project)
    assert not VoteChange.objects.filter(project=project, uncount_pending=True).exists()
