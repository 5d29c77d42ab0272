"""Reads for retraining: runs, versions, and whether a project is due."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from labeling.models import Project, Vote
from lib.errors import NotFound
from rewardmodel.models import ModelVersion, RetrainPolicy, TrainingRun

Status = TrainingRun.Status
# A queued run nobody took for this long, with no other run in the way, hints at a missing worker.
WAIT_HINT_SECONDS = 30


def training_run_active(*, project: Project, kind: str | None = None) -> TrainingRun | None:
    """The project's queued or running run of this kind (of any kind when None)."""
    runs = TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES)
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs.first()


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


def training_run_wait_reason(*, run: TrainingRun, now: datetime | None = None) -> str:
    """What a queued run is waiting for, in words for its page ("" unless it is queued)."""
    if run.status != Status.QUEUED:
        return ""
    if run.enqueued_at is None:
        return (
            "Not sent to the task queue yet: Redis did not answer. The reconciler sends it again "
            f"about {settings.RM_ENQUEUE_GRACE_SECONDS} s after Redis is back."
        )
    # Only runs sent to the same queue are in its way (fine-tunes and heads go to different ones).
    queue = settings.RM_RUN_QUEUES[run.kind]
    kinds = [kind for kind, q in settings.RM_RUN_QUEUES.items() if q == queue]
    worker = "training worker" if queue == "training" else f"worker on the `{queue}` queue"
    same_queue = TrainingRun.objects.filter(kind__in=kinds).exclude(pk=run.pk)
    busy = list(same_queue.filter(status=Status.RUNNING).select_related("project")[:3])
    ahead = same_queue.filter(status=Status.QUEUED, enqueued_at__lt=run.enqueued_at).count()
    more = f"; {ahead} more queued before it" if ahead else ""
    if busy:
        names = ", ".join(f"run {r.pk} of {r.project.slug} ({r.progress:.0%})" for r in busy)
        return f"Waiting for a {worker}: {names} {'is' if len(busy) == 1 else 'are'} training{more}."
    if ahead:
        return f"Waiting for a {worker}: {ahead} run{'s' if ahead > 1 else ''} queued before it."
    waited = ((now or timezone.now()) - run.enqueued_at).total_seconds()
    if waited > WAIT_HINT_SECONDS:
        started_by = "docker-compose runs `worker`" if queue == "training" else "config/runstack.py lists the workers"
        return (
            f"No {worker} has taken it in {waited:.0f} s, and none is busy with another run: is a worker "
            f"serving the `{queue}` queue running? (`make run` starts one; {started_by}.)"
        )
    return f"Waiting for a worker on the `{queue}` queue."


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


def model_version_checksums(*, version_id: int) -> dict[str, str]:
    """The checksums recorded when the version was trained (read when its folder is loaded)."""
    return ModelVersion.objects.filter(pk=version_id).values_list("checksums", flat=True).first() or {}


def votes_since_count(*, project: Project, since: datetime | None, cap: int) -> int:
    """Votes that arrived after `since` (all when None), counted up to `cap` only."""
    votes = Vote.objects.filter(project=project)
    if since is not None:
        votes = votes.filter(created_at__gt=since)
    return votes.values("pk")[:cap].count()


def consecutive_failures(*, project: Project, policy: RetrainPolicy, kind: str | None = None) -> list[TrainingRun]:
    """The failed runs (of `kind`, or of any kind) since the last successful one of that kind (and since
    the policy was last resumed), newest first.

    Cancelled runs are someone's decision, not a failure: they neither count
    nor break the streak.
    """
    runs = TrainingRun.objects.filter(project=project, status__in=(Status.FAILED, Status.SUCCEEDED))
    if kind is not None:
        runs = runs.filter(kind=kind)
    if policy.resumed_at is not None:
        runs = runs.filter(created_at__gt=policy.resumed_at)
    streak = []
    for run in runs.order_by("-created_at").only("id", "status", "finished_at", "error", "created_at")[:1000]:
        if run.status == Status.SUCCEEDED:
            break
        streak.append(run)
    return streak


def retry_backoff_seconds(*, failures: int) -> int:
    """How long the scheduler waits after the last of `failures` consecutive failed runs: doubling, capped."""
    if failures <= 0:
        return 0
    base, cap = settings.RM_RETRY_BACKOFF_SECONDS, settings.RM_RETRY_BACKOFF_MAX_SECONDS
    return min(cap, base * 2 ** min(failures - 1, 30))


def retrain_due_reason(
    *, project: Project, policy: RetrainPolicy, now: datetime, kind: str = TrainingRun.Kind.FINETUNE
) -> str | None:
    """Why the scheduler should retrain `project` with a run of `kind` now, or None.

    Due when enough votes arrived since the data of the last successful run
    of that kind was read (`min_new_votes` for fine-tunes, `head_min_new_votes`
    for heads), or, for fine-tunes, when `max_interval_hours` passed since
    that run and any vote arrived (the same data would only train the same
    model again). Not due while a run of that kind is active, nor while the
    policy is paused, nor during the backoff after failures of that kind:
    RM_RETRY_BACKOFF_SECONDS after the first failed run, doubling with each
    consecutive one up to RM_RETRY_BACKOFF_MAX_SECONDS (and
    RM_RETRY_BACKOFF_SECONDS after a cancelled run), so a broken project is
    not retried every minute.
    """
    head = kind == TrainingRun.Kind.HEAD
    enabled, needed = (
        (policy.head_enabled, policy.head_min_new_votes) if head else (policy.enabled, policy.min_new_votes)
    )
    if not enabled or policy.paused_at is not None or training_run_active(project=project, kind=kind) is not None:
        return None
    runs = TrainingRun.objects.filter(project=project, kind=kind)
    last = runs.order_by("-created_at").first()
    if last is not None and last.status in (Status.FAILED, Status.CANCELLED) and last.finished_at is not None:
        failures = len(consecutive_failures(project=project, policy=policy, kind=kind))
        wait = retry_backoff_seconds(failures=max(failures, 1))
        if now - last.finished_at < timedelta(seconds=wait):
            return None
    last_ok = runs.filter(status=Status.SUCCEEDED).order_by("-created_at").first()
    since = last_ok.snapshot_at if last_ok else None
    new_votes = votes_since_count(project=project, since=since, cap=needed)
    what = "head" if head else "fine-tune"
    if new_votes >= needed:
        return f"at least {needed} new votes since the last successful {what}"
    if (
        not head
        and policy.max_interval_hours
        and last_ok is not None
        and new_votes > 0
        and last_ok.finished_at is not None
        and now - last_ok.finished_at >= timedelta(hours=policy.max_interval_hours)
    ):
        return f"{policy.max_interval_hours} h since the last successful fine-tune, with new votes"
    return None
