"""Re-order a project's queue after each head retrain, by its acquisition strategy.

The newest head version scores the open train-split pairs (fewer votes and
leases than K) from the cached features (rewardmodel.features), the
strategy (`rewardmodel.training.acquisition`) turns the scores into an
order, an exploration share is placed at random, and labeling re-ranks the
pairs (`labeling.services.pairs_rerank`), which keeps held-out pairs random
and interleaved. It runs as its own task after the head's run is recorded,
so neither labeling nor the run waits for it.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db.models import F
from django.utils import timezone

from labeling import services as labeling_services
from labeling.models import Pair, Project, Split
from rewardmodel import features
from rewardmodel.models import ModelVersion, QueueOrder, TrainingRun

log = logging.getLogger(__name__)

CHUNK_PAIRS = 5000
LABELLED_SAMPLE = 20_000  # labelled positions the diversity term compares against, at most


@dataclass
class Refresh:
    strategy: str
    ordered: int
    seconds: float
    skipped: str = ""  # why nothing was re-ordered


def _side_keys(rows) -> tuple[np.ndarray, np.ndarray]:
    from rewardmodel.training.features import side_key

    keys_a = np.array([side_key(p, a) for _, p, a, _ in rows], dtype=np.int64)
    keys_b = np.array([side_key(p, b) for _, p, _, b in rows], dtype=np.int64)
    return keys_a, keys_b


def _open_train_pairs(project: Project):
    return (
        Pair.objects.filter(project=project, split=Split.TRAIN, slots_taken__lt=project.overlap_target, archived=False)
        .order_by("pk")
        .values_list("pk", "prompt", "response_a", "response_b")
    )


def queue_order_refresh(*, project: Project, version: ModelVersion | None = None, seed: int | None = None) -> Refresh:
    """Re-rank the project's open train pairs by its strategy and its newest head (or `version`)."""
    from rewardmodel.training.acquisition import diverse_order, pair_scores, with_exploration
    from rewardmodel.training.features import FeatureStore
    from rewardmodel.training.head import LinearHead
    from rewardmodel.training.model import read_meta

    started = time.perf_counter()
    strategy = project.acquisition
    if strategy == "random":
        n = labeling_services.pairs_rerank_reset(project=project)
        _record(project, strategy, None, n)
        return Refresh(strategy, n, time.perf_counter() - started)
    version = version or (
        ModelVersion.objects.filter(project=project, run__kind=TrainingRun.Kind.HEAD).order_by("-number").first()
    )
    if version is None:
        return Refresh(strategy, 0, time.perf_counter() - started, skipped="no head version yet")
    folder = Path(version.artifact_dir)
    meta = read_meta(folder)
    head = LinearHead.load(folder)
    features.features_fill(project=project)  # the open pairs' sides, if an import left some behind
    store_dir = features.project_cache_root(project_id=project.pk) / meta["feature_key"]
    if not store_dir.is_dir():  # the policy's features changed since this head: the next head re-orders
        return Refresh(strategy, 0, time.perf_counter() - started, skipped="no features for this head")
    store = FeatureStore(store_dir)
    seed = version.number if seed is None else seed

    ids, scores, candidates = [], [], []  # candidates: a heap of (score, pair id, position) for `diverse`
    for chunk in features.chunked(_open_train_pairs(project).iterator(chunk_size=CHUNK_PAIRS), CHUNK_PAIRS):
        keys_a, keys_b = _side_keys(chunk)
        known = store.contains(keys_a) & store.contains(keys_b)
        if not known.any():
            continue
        rows = [row for row, ok in zip(chunk, known) if ok]
        fa, fb = store.read(keys_a[known]), store.read(keys_b[known])
        chunk_scores = pair_scores(strategy, head=head, diff=(fa - fb).astype(np.float64), seed=seed + len(ids))
        ids += [pk for pk, *_ in rows]
        scores.append(chunk_scores)
        if strategy == "diverse":
            positions = (fa + fb) / 2
            for s, (pk, *_), pos in zip(chunk_scores, rows, positions):
                item = (float(s), pk, pos)
                if len(candidates) < 2048:
                    heapq.heappush(candidates, item)
                elif item[0] > candidates[0][0]:
                    heapq.heapreplace(candidates, item)
    if not ids:
        return Refresh(strategy, 0, time.perf_counter() - started, skipped="no open train pairs with features")
    scores_all = np.concatenate(scores)
    order = np.argsort(-scores_all, kind="stable")
    if strategy == "diverse" and candidates:
        top = sorted(candidates, key=lambda c: -c[0])
        picked = diverse_order(
            np.array([c[0] for c in top]),
            np.array([c[2] for c in top]),
            _labelled_positions(project, store),
            batch=64,
            candidates=len(top),
        )
        where = {pk: i for i, pk in enumerate(ids)}
        first = np.array([where[top[i][1]] for i in picked[:64]])
        order = np.concatenate([first, order[~np.isin(order, first)]])
    order = with_exploration(order, project.exploration_percent / 100, seed=seed)
    n = labeling_services.pairs_rerank(project=project, order=[ids[i] for i in order])
    _record(project, strategy, version, n)
    return Refresh(strategy, n, time.perf_counter() - started)


def _labelled_positions(project: Project, store) -> np.ndarray:
    """Positions of (a sample of) the project's voted train pairs: what the diversity term moves away from."""
    rows = list(
        Pair.objects.filter(project=project, split=Split.TRAIN, vote_count__gt=0)
        .order_by("?")[:LABELLED_SAMPLE]
        .values_list("pk", "prompt", "response_a", "response_b")
    )
    if not rows:
        return np.empty((0, store.dim or 0), dtype=np.float32)
    keys_a, keys_b = _side_keys(rows)
    known = store.contains(keys_a) & store.contains(keys_b)
    return (store.read(keys_a[known]) + store.read(keys_b[known])) / 2


def _record(project: Project, strategy: str, version: ModelVersion | None, n: int) -> None:
    QueueOrder.objects.update_or_create(
        project=project,
        defaults={"strategy": strategy, "version": version, "ordered_pairs": n, "applied_at": timezone.now()},
    )
    QueueOrder.objects.filter(project=project).update(refreshes=F("refreshes") + 1)
