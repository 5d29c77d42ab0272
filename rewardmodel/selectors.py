"""Reads for retraining: runs, versions, and whether a project is due."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from labeling.models import Project, Vote
from lib.errors import NotFound
from rewardmodel.models import ModelVersion, RetrainPolicy, TrainingRun

Status = TrainingRun.Status


def training_run_active(*, project: Project) -> TrainingRun | None:
    return TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES).first()


def training_run_list(*, project: Project, limit: int = 50) -> QuerySet[TrainingRun]:
    return (
        TrainingRun.objects.filter(project=project)
        .select_related("requested_by", "model_version__promoted_by")
        .order_by("-created_at")[:limit]
    )


def training_run_get(*, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.select_related("project", "requested_by").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such training run.")
    return run


def model_version_list(*, project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).select_related("run", "promoted_by").order_by("-number")


def model_version_get(*, version_id: int) -> ModelVersion:
    version = ModelVersion.objects.select_related("project", "run").filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such model version.")
    return version


def model_version_active_ref(*, project_id: int) -> tuple[int, int, str] | None:
    """(id, number, artifact folder) of the live version: the one cheap query per scoring request."""
    return (
        ModelVersion.objects.filter(project_id=project_id, is_active=True)
        .values_list("id", "number", "artifact_dir")
        .first()
    )


def votes_since_count(*, project: Project, since: datetime | None, cap: int) -> int:
    """Votes that arrived after `since` (all when None), counted up to `cap` only."""
    votes = Vote.objects.filter(project=project)
    if since is not None:
        votes = votes.filter(created_at__gt=since)
    return votes.values("pk")[:cap].count()


def retrain_due_reason(*, project: Project, policy: RetrainPolicy, now: datetime) -> str | None:
    """Why the scheduler should retrain `project` now, or None.

    Due when at least `min_new_votes` votes arrived since the data of the
    last successful run was read, or when `max_interval_hours` passed since
    that run and any vote arrived (the same data would only train the same
    model again). Not due while a run is active, nor within
    RM_RETRY_BACKOFF_SECONDS of a failed or cancelled run, so a broken
    project is not retried every minute.
    """
    if not policy.enabled or training_run_active(project=project) is not None:
        return None
    last = TrainingRun.objects.filter(project=project).order_by("-created_at").first()
    if (
        last is not None
        and last.status in (Status.FAILED, Status.CANCELLED)
        and last.finished_at is not None
        and now - last.finished_at < timedelta(seconds=settings.RM_RETRY_BACKOFF_SECONDS)
    ):
        return None
    last_ok = TrainingRun.objects.filter(project=project, status=Status.SUCCEEDED).order_by("-created_at").first()
    since = last_ok.snapshot_at if last_ok else None
    new_votes = votes_since_count(project=project, since=since, cap=policy.min_new_votes)
    if new_votes >= policy.min_new_votes:
        return f"at least {policy.min_new_votes} new votes since the last successful run"
    if (
        policy.max_interval_hours
        and last_ok is not None
        and new_votes > 0
        and last_ok.finished_at is not None
        and now - last_ok.finished_at >= timedelta(hours=policy.max_interval_hours)
    ):
        return f"{policy.max_interval_hours} h since the last successful run, with new votes"
    return None
