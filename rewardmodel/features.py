"""Each project's cache of frozen backbone features, for its heads, kept fresh in the background.

The cache lives under FEATURE_CACHE_DIR/project-<id>/<spec key>/ (a
`training.features.FeatureStore`). The spec comes from the project's
retrain policy (backbone, length, layer, pooling), so editing any of those
changes the key: the next fill starts a new, empty store and removes the
stores of other keys. Nothing is ever served from a stale spec.

New pairs are embedded in the background: an import announces them
(labeling.signals.pairs_imported) and `features_fill_task` embeds every
side the store lacks, in chunks, so memory stays bounded. A head run embeds
whatever is still missing itself, so the cache is a speed-up, never a
requirement.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from labeling.models import Pair, Project
from rewardmodel.models import RetrainPolicy
from rewardmodel.run_config import train_config_build

log = logging.getLogger(__name__)

FILL_CHUNK_PAIRS = 2000


def project_cache_root(*, project_id: int) -> Path:
    return Path(settings.FEATURE_CACHE_DIR) / f"project-{project_id}"


def head_config_for(*, project: Project):
    """The config a head of this project trains with now (its policy's train_config): its features' spec."""
    policy = RetrainPolicy.for_project(project)
    return train_config_build(policy_overrides=policy.train_config, kind="head")


@contextlib.contextmanager
def _fill_lock(root: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on the project's cache: True when this process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".fill.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class FillReport:
    key: str
    embedded_sides: int
    stored_sides: int
    removed_stale: list[str]
    skipped: bool = False  # another process was filling this cache


def features_fill(*, project: Project, chunk_pairs: int = FILL_CHUNK_PAIRS) -> FillReport:
    """Embed every side of the project's pairs that its current store lacks; drop stores of other keys.

    Safe to run anywhere, any number of times at once: one process fills a
    project's cache at a time (a file lock), and it loops until no pair is
    missing, so pairs imported meanwhile are not left behind.
    """
    from rewardmodel.training.features import Embedder, embed_missing, side_key
    from rewardmodel.training.head_trainer import feature_store_for

    root = project_cache_root(project_id=project.pk)
    config = head_config_for(project=project)
    with _fill_lock(root) as held:
        if not held:
            return FillReport(key="", embedded_sides=0, stored_sides=0, removed_stale=[], skipped=True)
        embedder = Embedder(config.feature_spec(), bf16=config.bf16, batch_tokens=config.embed_batch_tokens)
        store = feature_store_for(embedder, root)
        embedded = 0
        while True:
            added = 0
            pairs = (
                Pair.objects.filter(project=project).order_by("pk").values_list("prompt", "response_a", "response_b")
            )
            for chunk in chunked(pairs.iterator(chunk_size=chunk_pairs), chunk_pairs):
                prompts = [p for p, _, _ in chunk for _side in (0, 1)]
                responses = [r for _, a, b in chunk for r in (a, b)]
                keys = np.array([side_key(p, r) for p, r in zip(prompts, responses)], dtype=np.int64)
                added += embed_missing(keys, prompts, responses, embedder=embedder, store=store)
            embedded += added
            if not added:
                break
        stale = [p.name for p in root.iterdir() if p.is_dir() and p.name != embedder.key]
        for name in stale:  # another spec's features: never read again
            shutil.rmtree(root / name, ignore_errors=True)
        return FillReport(key=embedder.key, embedded_sides=embedded, stored_sides=len(store), removed_stale=stale)


def chunked(rows, size: int):
    """Lists of up to `size` items from an iterator, in order (itertools.batched, before Python 3.12)."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def features_fill_request(*, project_id: int, **signal_kwargs) -> None:
    """Fill the project's cache in the background once the pairs are committed (labeling.signals.pairs_imported)."""
    from rewardmodel.tasks import features_fill_task

    def send() -> None:
        try:
            features_fill_task.apply_async(args=[project_id], queue=settings.RM_RUN_QUEUES["head"])
        except Exception as exc:  # the import must not fail because the broker is down; a head run embeds anyway
            log.warning(
                "Could not queue the feature fill of project %s (%s); its next head run embeds them itself",
                project_id,
                exc,
            )

    transaction.on_commit(send)
