"""Scoring with the live model: loaded once per process, reloaded when the active version changes.

Each request asks the database one cheap question, "which version is
active?" (id, number, folder), and scores with the cached model when the
id matches. A promotion or rollback changes the id, so the next request
loads the new version; the cache keeps RM_SCORER_CACHE_SIZE projects' models
(least recently used out).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from labeling.models import Project
from lib.errors import Conflict, PayloadTooLarge
from rewardmodel import selectors
from rewardmodel.errors import NoActiveModel

log = logging.getLogger(__name__)


@dataclass
class Scores:
    version_id: int
    version_number: int
    raw: list[float]
    normalized: list[float]


class _Loaded:
    def __init__(self, version_id: int, scorer):
        self.version_id = version_id
        self.scorer = scorer
        # One batch at a time per model: the tokenizer is not safe to share
        # between threads, and parallel forwards only fight over the cores.
        self.lock = threading.Lock()


class ScorerCache:
    def __init__(self) -> None:
        self._models: OrderedDict[int, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # loading is memory-heavy: one at a time
        self.loads = 0

    def get(self, *, project_id: int, version_id: int, artifact_dir: str) -> _Loaded:
        hit = self._cached(project_id, version_id)
        if hit is not None:
            return hit
        with self._load_lock:
            hit = self._cached(project_id, version_id)  # another thread may have loaded it meanwhile
            if hit is not None:
                return hit
            from rewardmodel.execution import torch_threads_limit
            from rewardmodel.training import RewardScorer
            from rewardmodel.training.integrity import ArtifactIntegrityError

            torch_threads_limit()
            # Checksums verified at load: a folder changed since training is refused.
            checksums = selectors.model_version_checksums(version_id=version_id)
            try:
                scorer = RewardScorer.load(artifact_dir, device=settings.RM_SCORING_DEVICE, checksums=checksums)
            except (OSError, ArtifactIntegrityError) as exc:
                log.error("Refused to load model version %s from %s: %s", version_id, artifact_dir, exc)
                raise Conflict(
                    "The live model's files are missing or differ from the checksums recorded when it was "
                    "trained; it is not loaded. Roll back to another version, or retrain."
                ) from None
            loaded = _Loaded(version_id, scorer)
            with self._lock:
                self._models[project_id] = loaded
                self._models.move_to_end(project_id)
                while len(self._models) > settings.RM_SCORER_CACHE_SIZE:
                    self._models.popitem(last=False)
                self.loads += 1
            log.info("Loaded model version %s for project %s from %s", version_id, project_id, artifact_dir)
            return loaded

    def _cached(self, project_id: int, version_id: int) -> _Loaded | None:
        with self._lock:
            hit = self._models.get(project_id)
            if hit is None or hit.version_id != version_id:
                return None
            self._models.move_to_end(project_id)
            return hit

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


scorer_cache = ScorerCache()


def score_request_check(*, prompts: Sequence[str], responses: Sequence[str]) -> None:
    """Refuse (413) a request over the item or character caps."""
    n = len(prompts)
    if n > settings.RM_SCORE_MAX_ITEMS:
        raise PayloadTooLarge(f"Too many items: {n}; at most {settings.RM_SCORE_MAX_ITEMS} per request.")
    chars = sum(map(len, prompts)) + sum(map(len, responses))
    if chars > settings.RM_SCORE_MAX_CHARS:
        raise PayloadTooLarge(
            f"Too much text: {chars:,} characters; at most {settings.RM_SCORE_MAX_CHARS:,} per request."
        )


def responses_score(*, project: Project, prompts: Sequence[str], responses: Sequence[str]) -> Scores:
    """Raw and normalised rewards of each response to its prompt, from the project's live model."""
    score_request_check(prompts=prompts, responses=responses)
    active = selectors.model_version_active_ref(project_id=project.pk)
    if active is None:
        raise NoActiveModel()
    version_id, number, artifact_dir = active
    loaded = scorer_cache.get(project_id=project.pk, version_id=version_id, artifact_dir=artifact_dir)
    with loaded.lock:
        raw, normalized = loaded.scorer.score(list(prompts), list(responses), batch_size=settings.RM_SCORE_BATCH_SIZE)
    return Scores(version_id=version_id, version_number=number, raw=raw, normalized=normalized)
