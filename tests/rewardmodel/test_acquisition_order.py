"""The queue's order under an acquisition strategy: held-out pairs stay random, K holds while it changes."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from django.db import connection
from scipy.stats import kstest

from labeling import services
from labeling.models import Assignment, Pair, Split, Vote
from rewardmodel import acquisition
from rewardmodel.models import QueueOrder
from rewardmodel.training.acquisition import STRATEGIES
from tests.conftest import make_records, make_user
from tests.rewardmodel.conftest import labelled_records, make_version


def _queue_walk(project) -> list[Pair]:
    """The open pairs in the order the lease statement walks them."""
    return list(
        Pair.objects.filter(project=project, slots_taken__lt=project.overlap_target).order_by("slots_taken", "rank")
    )


@pytest.fixture
def pool_project(db, rm_settings):
    """40 labelled pairs and 300 unlabelled ones, a quarter of the prompts held out."""
    project = services.project_create(slug="pool", name="Pool", test_percent=25, overlap_target=3)
    services.pairs_import_batch(project=project, records=labelled_records(40), shuffle_sides=False)
    services.pairs_import_batch(project=project, records=make_records(300, prefix="open"), shuffle_sides=True)
    return project


@pytest.mark.both_databases
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_held_out_pairs_keep_their_random_order_and_share_under_every_strategy(pool_project, tiny_head_dir, strategy):
    # given a head, and the held-out pairs' ranks before any re-ordering
    project = pool_project
    version = make_version(project, tiny_head_dir, kind="head")
    held_out = dict(Pair.objects.filter(project=project, split=Split.TEST).values_list("pk", "rank"))
    project.acquisition = strategy
    project.save()
    # when the queue is re-ordered by the strategy
    refresh = acquisition.queue_order_refresh(project=project, version=version)
    # then every open train pair got its place (random: its own rank, which it never lost), and no held-out
    # pair moved
    open_train = Pair.objects.filter(project=project, split=Split.TRAIN, slots_taken__lt=3).count()
    assert refresh.ordered == (0 if strategy == "random" else open_train) and not refresh.skipped
    assert dict(Pair.objects.filter(project=project, split=Split.TEST).values_list("pk", "rank")) == held_out
    assert QueueOrder.objects.get(project=project).strategy == strategy
    # and along the queue's walk, held-out pairs are spread as at random: no stretch of anyone's work lacks them
    walk = _queue_walk(project)
    positions = [i / len(walk) for i, pair in enumerate(walk) if pair.split == Split.TEST]
    assert kstest(positions, "uniform").pvalue > 0.01
    first_third = walk[: len(walk) // 3]
    share = sum(p.split == Split.TEST for p in first_third) / len(first_third)
    overall = len(positions) / len(walk)
    assert abs(share - overall) < 0.1


def test_uncertainty_puts_the_pairs_the_head_is_least_sure_of_first(pool_project, tiny_head_dir):
    from rewardmodel.training import RewardScorer

    project = pool_project
    project.acquisition, project.exploration_percent = "uncertainty", 0
    project.save()
    version = make_version(project, tiny_head_dir, kind="head")
    acquisition.queue_order_refresh(project=project, version=version)
    train = [p for p in _queue_walk(project) if p.split == Split.TRAIN]
    scorer = RewardScorer.load(tiny_head_dir)
    margins = []
    for pair in train:
        (ra, rb), _ = scorer.score([pair.prompt, pair.prompt], [pair.response_a, pair.response_b])
        margins.append(abs(ra - rb))
    # the walk's train pairs go from the smallest |margin| up (float16 features: allow near-ties)
    assert np.all(np.diff(margins) > -1e-2)
    assert margins[0] <= np.median(margins) <= margins[-1]


def test_random_gives_every_pair_its_own_rank_back(pool_project, tiny_head_dir):
    project = pool_project
    version = make_version(project, tiny_head_dir, kind="head")
    original = dict(Pair.objects.filter(project=project).values_list("pk", "rank"))
    project.acquisition = "disagreement"
    project.save()
    acquisition.queue_order_refresh(project=project, version=version)
    assert dict(Pair.objects.filter(project=project).values_list("pk", "rank")) != original
    project.acquisition = "random"
    project.save()
    acquisition.queue_order_refresh(project=project)
    assert dict(Pair.objects.filter(project=project).values_list("pk", "rank")) == original


@pytest.mark.postgres
@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_k_holds_while_the_queue_is_reordered_again_and_again(django_user_model):
    # given 60 pairs with K=2, twelve annotators, and a re-ranker that never stops while they work
    project = services.project_create(slug="rerank", name="Rerank", overlap_target=2, test_percent=25)
    services.pairs_import_batch(project=project, records=make_records(60), shuffle_sides=True)
    users = [make_user(django_user_model, f"ranker{i}", "annotator") for i in range(12)]
    project.members.add(*users)
    train_ids = list(Pair.objects.filter(project=project, split=Split.TRAIN).values_list("pk", flat=True))
    stop = threading.Event()
    errors: list[BaseException] = []
    reranks = [0]

    def rerank():
        rng = random.Random(0)
        try:
            while not stop.is_set():
                order = train_ids[:]
                rng.shuffle(order)
                services.pairs_rerank(project=project, order=order)
                reranks[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def annotate(user):
        try:
            while (assignment := services.assignment_next(project=project, user=user)) is not None:
                services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    reranker = threading.Thread(target=rerank)
    reranker.start()
    workers = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    stop.set()
    reranker.join(timeout=60)
    # then nothing failed, the queue was re-ordered while they worked, and every pair has exactly K votes
    assert errors == [] and reranks[0] >= 2
    for pair in Pair.objects.filter(project=project):
        assert pair.vote_count == pair.slots_taken == pair.votes.count() == 2
    assert not Assignment.objects.filter(project=project, state=Assignment.State.LIVE).exists()
    pairs_per_annotator = list(Vote.objects.filter(project=project).values_list("pair_id", "annotator_id"))
    assert len(set(pairs_per_annotator)) == len(pairs_per_annotator)
