"""Next-pair selection under real concurrency, on PostgreSQL.

Fifty threads, each its own annotator with its own connection, race to
lease and vote. K must hold for every pair, nobody votes twice on a pair,
and no vote is lost.
"""

import threading

import pytest
from django.db import connection

from labeling import services
from labeling.models import Assignment, Pair, Vote
from tests.conftest import make_records, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

THREADS = 50


def test_fifty_concurrent_annotators_respect_k(django_user_model):
    # given 40 pairs with K=3, and 50 annotators
    project = services.project_create(slug="race", name="Race", overlap_target=3)
    services.pairs_import_batch(project=project, records=make_records(40), shuffle_sides=False)
    users = [make_user(django_user_model, f"racer{i}", "annotator") for i in range(THREADS)]
    project.members.add(*users)
    barrier = threading.Barrier(THREADS)
    accepted: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def annotate(user):
        try:
            barrier.wait()
            while (assignment := services.assignment_next(project=project, user=user)) is not None:
                vote, created = services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
                with lock:
                    accepted.append(vote.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when they all label at once
    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # then no errors, every pair has exactly K votes, and the counters agree
    assert errors == []
    assert Vote.objects.count() == 40 * 3 == len(accepted) == len(set(accepted))
    for pair in Pair.objects.filter(project=project):
        assert pair.vote_count == pair.slots_taken == pair.votes.count() == 3
    assert not Assignment.objects.filter(state=Assignment.State.LIVE).exists()
    pairs_per_annotator = Vote.objects.values_list("pair_id", "annotator_id")
    assert len(set(pairs_per_annotator)) == len(pairs_per_annotator)


def test_concurrent_double_submit_gives_one_vote(django_user_model):
    project = services.project_create(slug="dbl", name="Double")
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    user = make_user(django_user_model, "clicker", "annotator")
    project.members.add(user)
    assignment = services.assignment_next(project=project, user=user)
    barrier = threading.Barrier(8)
    results = []

    def submit():
        barrier.wait()
        try:
            results.append(services.vote_submit(assignment_id=assignment.pk, user=user, choice="right"))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Vote.objects.count() == 1
    assert sum(created for _, created in results) == 1
    assert Pair.objects.get().vote_count == 1


def test_undo_racing_new_leases_keeps_k(django_user_model):
    # given a scarce pool, 6 pairs with K=1, and 8 annotators who vote, undo, then vote again or skip,
    # while a watcher reads every pair's votes plus live leases in one statement
    import random

    from django.db.models import Count, Q

    project = services.project_create(slug="undo-race", name="Undo race", overlap_target=1)
    services.pairs_import_batch(project=project, records=make_records(6), shuffle_sides=False)
    users = [make_user(django_user_model, f"undoer{i}", "annotator") for i in range(8)]
    project.members.add(*users)
    barrier = threading.Barrier(len(users) + 1)
    errors: list[BaseException] = []
    over: list[int] = []
    done = threading.Event()

    def counted():
        return Pair.objects.filter(project=project).annotate(
            votes_n=Count("votes", distinct=True),
            live_n=Count("assignments", filter=Q(assignments__state="live"), distinct=True),
        )

    def annotate(user, seed):
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(30):
                assignment = services.assignment_next(project=project, user=user)
                if assignment is None:
                    break
                services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
                undone = services.vote_undo(assignment_id=assignment.pk, user=user)
                if rng.random() < 0.5:
                    services.assignment_skip(assignment_id=undone.assignment.pk, user=user)
                else:
                    services.vote_submit(assignment_id=undone.assignment.pk, user=user, choice="right")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def watch():
        try:
            barrier.wait()
            while not done.is_set():
                over.extend(p.pk for p in counted() if p.votes_n + p.live_n > 1)
        finally:
            connection.close()

    # when they all run at once
    threads = [threading.Thread(target=annotate, args=(u, i)) for i, u in enumerate(users)]
    watcher = threading.Thread(target=watch)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    watcher.join(timeout=60)

    # then K held at every instant watched, and every counter equals its rows
    assert errors == [] and over == []
    for pair in counted():
        assert pair.slots_taken == pair.votes_n + pair.live_n <= 1
        choices = list(pair.votes.values_list("choice", flat=True))
        assert pair.vote_count == pair.votes_n == pair.votes_a + pair.votes_b
        assert (pair.votes_a, pair.votes_b) == (choices.count("a"), choices.count("b"))
    assert Vote.objects.filter(project=project).count() > 0
