"""The promotion gate's data: the versions a candidate is compared with, and
their margins on the candidate's held-out pairs.

`PairPrediction` is the score cache: one margin (r_a - r_b) per version and
pair. A version gets its rows when it is trained (every voted test pair at
the time) and later, here, for held-out pairs voted after it was trained:
`references_prepare` scores each reference version on the pairs it has no
row for yet, through `RewardScorer` (checksums verified), in the worker,
before the run's final transaction. That transaction then reads the cache
(`references_read`) and decides (`rewardmodel.promotion`).

The rules themselves live in `rewardmodel.promotion`; nothing here
assumes what kind of model a folder holds beyond what RewardScorer loads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from labeling.models import Pair
from rewardmodel import signals
from rewardmodel.models import ModelVersion, PairPrediction
from rewardmodel.promotion import Reference
from rewardmodel.snapshot import VotedTestPair

log = logging.getLogger(__name__)


def reference_versions(*, project_id: int) -> tuple[ModelVersion | None, list[ModelVersion]]:
    """(the live version, the last RM_PROMOTION_LOOKBACK versions that were ever live), newest first."""
    active = ModelVersion.objects.filter(project_id=project_id, is_active=True).first()
    recent = list(
        ModelVersion.objects.filter(project_id=project_id)
        .filter(Q(is_active=True) | Q(promoted_at__isnull=False))
        .order_by("-number")[: settings.RM_PROMOTION_LOOKBACK]
    )
    return active, recent


def references_prepare(*, project_id: int, pairs: Sequence[VotedTestPair]) -> dict[int, int]:
    """Score every reference version on the pairs it has not scored yet; version id -> pairs scored now."""
    active, recent = reference_versions(project_id=project_id)
    versions = {v.pk: v for v in [*([active] if active else []), *recent]}
    return {vid: version_predictions_fill(version=v, pairs=pairs) for vid, v in versions.items()}


def references_read(*, project_id: int, pair_ids: Iterable[int]) -> tuple[Reference | None, list[Reference]]:
    """The live version and the recent live ones as `Reference`s, with their cached margins on `pair_ids`."""
    active, recent = reference_versions(project_id=project_id)
    wanted = list(pair_ids)
    ids = {v.pk for v in recent} | ({active.pk} if active else set())
    margins: dict[int, dict[int, float]] = {vid: {} for vid in ids}
    for start in range(0, len(wanted), 2000):
        rows = PairPrediction.objects.filter(version_id__in=ids, pair_id__in=wanted[start : start + 2000])
        for version_id, pair_id, margin in rows.values_list("version_id", "pair_id", "margin"):
            margins[version_id][pair_id] = margin
    as_reference = lambda v: Reference(v.number, margins[v.pk])  # noqa: E731
    return (as_reference(active) if active else None), [as_reference(v) for v in recent]


def pair_margins(scorer, pairs) -> list[float]:
    """r(response_a) - r(response_b) per pair (anything with prompt, response_a, response_b), batched."""
    prompts = [p.prompt for p in pairs]
    raw_a, _ = scorer.score(prompts, [p.response_a for p in pairs], batch_size=settings.RM_SCORE_BATCH_SIZE)
    raw_b, _ = scorer.score(prompts, [p.response_b for p in pairs], batch_size=settings.RM_SCORE_BATCH_SIZE)
    return [a - b for a, b in zip(raw_a, raw_b)]


def version_predictions_fill(*, version: ModelVersion, pairs: Sequence[VotedTestPair]) -> int:
    """Cache `version`'s margin on each of `pairs` it has none for; the number scored now.

    A version whose files were pruned or do not load keeps the scores it
    has: the gate then compares on the pairs both sides have (logged).
    """
    have = set(
        PairPrediction.objects.filter(version=version, pair_id__in=[p.pair_id for p in pairs]).values_list(
            "pair_id", flat=True
        )
    )
    missing = [p for p in pairs if p.pair_id not in have]
    if not missing:
        return 0
    if version.pruned_at is not None:
        log.warning(
            "v%s of project %s was pruned: compared on its cached scores only", version.number, version.project_id
        )
        return 0
    from rewardmodel.training import RewardScorer  # torch: the worker only

    try:
        scorer = RewardScorer.load(version.artifact_dir, device=settings.RM_SCORING_DEVICE, checksums=version.checksums)
    except (OSError, ValueError) as exc:
        log.warning("Cannot load v%s of project %s to compare with (%s)", version.number, version.project_id, exc)
        return 0
    margins = pair_margins(scorer, missing)
    del scorer
    with transaction.atomic():
        # Pairs deleted meanwhile have nothing to attach to.
        alive = set(Pair.objects.filter(pk__in=[p.pair_id for p in missing]).values_list("pk", flat=True))
        rows = [
            PairPrediction(version=version, pair_id=p.pair_id, margin=m)
            for p, m in zip(missing, margins)
            if p.pair_id in alive and math.isfinite(m)
        ]
        PairPrediction.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        # The dashboard counts the live version's picks: it recomputes them in this transaction.
        signals.version_predictions_added.send(sender=ModelVersion, version=version)
    log.info("Scored v%s of project %s on %s more held-out pairs", version.number, version.project_id, len(rows))
    return len(rows)
