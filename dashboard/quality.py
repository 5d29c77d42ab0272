"""Annotator reliability for the dashboard: the project's label model, fitted on every vote, cached per annotator.

A fit reads every vote of the project (crowd-kit's models iterate over all
of them), so it does not run per request: a beat task refits a project when
it has votes or vote changes the last fit did not see
(`reliability_refit_due`), and the dashboard reads the cached
`AnnotatorReliability` rows. Gold pairs' votes go in too, with their answers
as `gold`, so they anchor each annotator's reliability
(preferences.label_models.label_model_fit). The model is the project's
training label model (RetrainPolicy.label_model), "dawid_skene" where the
project trains on majority labels: majority vote gives no reliability worth
the name.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from dashboard.models import AnnotatorReliability, ReliabilityFit
from labeling.models import Project, Vote, VoteChange
from labeling.selectors import label_model_inputs
from preferences.label_models import label_model_fit
from rewardmodel.models import RetrainPolicy

# The reliability model where the project's training label model is majority vote.
DEFAULT_RELIABILITY_MODEL = "dawid_skene"


def reliability_model_for(*, project: Project) -> str:
    model = RetrainPolicy.for_project(project).label_model
    return DEFAULT_RELIABILITY_MODEL if model == "majority" else model


def _vote_marks(project: Project) -> tuple[int, int]:
    """(the last vote id, the number of vote changes): what a fit has seen."""
    last = Vote.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0
    return last, VoteChange.objects.filter(project=project).count()


def reliability_refit_due(*, project: Project) -> bool:
    fit = ReliabilityFit.objects.filter(project=project).first()
    if fit is None:
        return Vote.objects.filter(project=project).exists()
    return (fit.last_vote_id, fit.changes_seen) != _vote_marks(project) or fit.model != reliability_model_for(
        project=project
    )


def reliability_refit(*, project: Project) -> ReliabilityFit:
    """Fit the project's label model on all its votes and store each annotator's reliability.

    Archived pairs are left out. Each annotator gets a row: their estimated
    reliability (None where the fit has none: no decisive vote) and how
    many decisive votes it rests on.
    """
    model = reliability_model_for(project=project)
    last_vote_id, changes = _vote_marks(project)
    # Paused annotators' votes too: the dashboard shows their reliability as well.
    votes, gold = label_model_inputs(project=project, leave_out_paused=False)
    annotators = {v.annotator for v in votes}
    started = time.perf_counter()
    fit = label_model_fit(votes, model=model, gold=gold or None) if votes else None
    seconds = time.perf_counter() - started
    now = timezone.now()
    with transaction.atomic():
        AnnotatorReliability.objects.filter(project=project).delete()
        AnnotatorReliability.objects.bulk_create(
            [
                AnnotatorReliability(
                    project=project,
                    annotator_id=a,
                    model=model,
                    reliability=fit.reliability.get(a) if fit else None,
                    decisive_votes=fit.decisive_votes.get(a, 0) if fit else 0,
                    fitted_at=now,
                )
                for a in sorted(annotators)
            ],
            batch_size=2000,
        )
        row, _ = ReliabilityFit.objects.update_or_create(
            project=project,
            defaults={
                "model": model,
                "votes": len(votes),
                "last_vote_id": last_vote_id,
                "changes_seen": changes,
                "fitted_at": now,
                "seconds": seconds,
                "error": "",
            },
        )
    return row


def reliability_refit_all() -> dict[str, float]:
    """Refit every project whose votes changed since its last fit (the beat task); seconds per project refitted."""
    done = {}
    for project in Project.objects.all():
        if reliability_refit_due(project=project):
            done[project.slug] = reliability_refit(project=project).seconds
    return done
