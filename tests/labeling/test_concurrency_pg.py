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
