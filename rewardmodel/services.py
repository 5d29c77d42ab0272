"""Writes for retraining: request, claim, heartbeat, finish, reconcile, promote.

Every status change is a conditional UPDATE on (id, status, attempt): the
worker that claimed attempt N owns the run until its row says otherwise,
so a redelivered task message, a zombie worker or the reconciler can never
make two copies of one run write results. Each function owns its
transaction; enqueueing happens after commit (`transaction.on_commit`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from labeling.models import Pair, Project
from lib.errors import Conflict, InvalidInput
from rewardmodel import artifacts, gate, selectors, signals
from rewardmodel.errors import RunAlreadyActive
from rewardmodel.models import ModelVersion, PairPrediction, RetrainPolicy, TrainingRun
from rewardmodel.promotion import Rules, non_finite_metrics, promotion_decide
from rewardmodel.run_config import train_config_build, train_config_error

log = logging.getLogger(__name__)

Status = TrainingRun.Status


# --------------------------------------------------------------------------- #
# Policies
# --------------------------------------------------------------------------- #
POLICY_FIELDS = (
    "enabled",
    "min_new_votes",
    "max_interval_hours",
    "head_enabled",
    "head_min_new_votes",
    "promotion_delta",
    "label_model",
    "train_config",
)


def retrain_policy_update(*, project: Project, **changes: Any) -> RetrainPolicy:
    """Create or change a project's retrain policy; bad input writes nothing."""
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown policy field(s): {', '.join(unknown)}.")
    policy = RetrainPolicy.for_project(project)
    for name, value in changes.items():
        setattr(policy, name, value)
    error = train_config_error(policy_overrides=policy.train_config)
    if error:
        raise InvalidInput(f"train_config: {error}")
    try:
        policy.full_clean()
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
    policy.save()
    return policy


def retrain_policy_pause_if_failing(*, project: Project, policy: RetrainPolicy, now: datetime) -> bool:
    """Pause the policy after RM_PAUSE_AFTER_FAILURES consecutive failed runs; True when it is paused."""
    if policy.paused_at is not None:
        return True
    limit = settings.RM_PAUSE_AFTER_FAILURES
    if not limit or not policy.enabled:
        return False
    failures = selectors.consecutive_failures(project=project, policy=policy)
    if len(failures) < limit:
        return False
    last = failures[0]
    reason = (
        f"Paused after {len(failures)} consecutive failed runs (RM_PAUSE_AFTER_FAILURES={limit}); the last, "
        f"run {last.pk}, failed with: {last.error[:500] or 'no message'}. Fix the cause, then resume."
    )
    if policy.pk is None:
        policy.save()
    RetrainPolicy.objects.filter(pk=policy.pk, paused_at__isnull=True).update(paused_at=now, pause_reason=reason)
    log.error("Automatic retraining of %s paused: %s", project.slug, reason)
    return True


def retrain_policy_resume(*, project: Project, user: AbstractBaseUser | None = None) -> RetrainPolicy:
    """Lift a pause: the scheduler may retrain again, and the failures so far no longer count."""
    policy = RetrainPolicy.for_project(project)
    if policy.paused_at is None:
        raise Conflict("Automatic retraining of this project is not paused.")
    RetrainPolicy.objects.filter(pk=policy.pk).update(paused_at=None, pause_reason="", resumed_at=timezone.now())
    log.info("Automatic retraining of %s resumed by %s", project.slug, getattr(user, "username", None) or "system")
    return RetrainPolicy.for_project(project)


# --------------------------------------------------------------------------- #
# Requesting and enqueueing
# --------------------------------------------------------------------------- #
def training_run_request(
    *, project: Project, trigger: str, user: AbstractBaseUser | None = None, kind: str = TrainingRun.Kind.FINETUNE
) -> TrainingRun:
    """Queue a run of `kind` for `project` and send it to a worker after commit.

    Raises RunAlreadyActive (409) with the existing run when one of the same
    kind is queued or running: the project row lock serialises concurrent
    requests and the partial unique constraint backs it up. A head run and a
    fine-tune may run side by side.
    """
    if trigger not in TrainingRun.Trigger.values:
        raise InvalidInput(f"trigger must be one of {', '.join(TrainingRun.Trigger.values)}.")
    if kind not in TrainingRun.Kind.values:
        raise InvalidInput(f"kind must be one of {', '.join(TrainingRun.Kind.values)}.")
    policy = RetrainPolicy.for_project(project)
    try:
        config = train_config_build(policy_overrides=policy.train_config, kind=kind)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"This project's train_config is invalid: {exc}") from None

    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        active = selectors.training_run_active(project=project, kind=kind)
        if active is not None:
            raise RunAlreadyActive(active)
        try:
            with transaction.atomic():
                run = TrainingRun.objects.create(
                    project=project,
                    kind=kind,
                    trigger=trigger,
                    requested_by=user if user is not None and user.is_authenticated else None,
                    config=config.to_dict(),
                )
        except IntegrityError:  # a concurrent request won the race the lock did not cover
            active = selectors.training_run_active(project=project, kind=kind)
            if active is None:
                raise Conflict("Another run was being started for this project; try again.") from None
            raise RunAlreadyActive(active) from None
        transaction.on_commit(lambda: training_run_enqueue(run_id=run.pk))
    log.info("Queued %s run %s for %s (trigger %s)", kind, run.pk, project.slug, trigger)
    return run


def training_run_enqueue(*, run_id: int) -> bool:
    """Send the run's task message. A broker error is logged, never raised:
    the run stays queued with no `enqueued_at`, and the reconciler resends it."""
    from rewardmodel.tasks import train_run  # tasks import this module

    task_id = str(uuid.uuid4())
    kind = TrainingRun.objects.filter(pk=run_id).values_list("kind", flat=True).first() or TrainingRun.Kind.FINETUNE
    # Heads go to the fast queue with a short time limit of their own, so they never wait behind a
    # fine-tune. A fine-tune's message carries no limits: Celery would otherwise stamp the sender's
    # (the web's) on it; the worker applies its own TRAINING_*_TIME_LIMIT.
    limits = {"soft_time_limit": None, "time_limit": None}
    if kind == TrainingRun.Kind.HEAD:
        limits = {
            "soft_time_limit": settings.RM_HEAD_SOFT_TIME_LIMIT,
            "time_limit": settings.RM_HEAD_SOFT_TIME_LIMIT + 60,
        }
    try:
        train_run.apply_async(args=[run_id], task_id=task_id, queue=settings.RM_RUN_QUEUES[kind], **limits)
    except Exception as exc:  # kombu/redis/socket errors alike: the vote or click must not fail
        log.warning(
            "Could not enqueue training run %s (%s: %s); the reconciler will resend it", run_id, type(exc).__name__, exc
        )
        return False
    TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        enqueued_at=timezone.now(), celery_task_id=task_id
    )
    return True


# --------------------------------------------------------------------------- #
# The worker's side: claim, heartbeat, finish
# --------------------------------------------------------------------------- #
def training_run_claim(*, run_id: int, task_id: str, host: str) -> TrainingRun | None:
    """Take a queued run for this worker: the next attempt, or None when it is
    not queued (already taken, finished, or cancelled) so a duplicate message
    does nothing."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED, cancel_requested=False).update(
        status=Status.RUNNING,
        attempt=F("attempt") + 1,
        started_at=now,
        heartbeat_at=now,
        worker_host=host[:200],
        celery_task_id=task_id[:64],
        phase="starting",
        progress=0.0,
        progress_metrics={},
    )
    if not claimed:
        return None
    return TrainingRun.objects.select_related("project").get(pk=run_id)


@dataclass(frozen=True)
class BeatAnswer:
    owned: bool  # False: the reconciler took the run away; stop without writing
    cancel_requested: bool


def training_run_beat(
    *, run_id: int, attempt: int, progress: float, phase: str, metrics: dict | None = None
) -> BeatAnswer:
    """Record liveness and progress of the attempt that owns the run; read Cancel."""
    updated = TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
        heartbeat_at=timezone.now(),
        progress=max(0.0, min(1.0, progress)),
        phase=phase[:32],
        progress_metrics=_json_safe(metrics or {}),
    )
    if not updated:
        return BeatAnswer(owned=False, cancel_requested=False)
    cancel = TrainingRun.objects.filter(pk=run_id).values_list("cancel_requested", flat=True).first()
    return BeatAnswer(owned=True, cancel_requested=bool(cancel))


def training_run_record_snapshot(
    *,
    run_id: int,
    attempt: int,
    sha256: str,
    n_train: int,
    n_test: int,
    n_votes: int,
    taken_at: datetime,
    config: dict,
    label_model: str = "majority",
) -> bool:
    """Store what the attempt trains on; False when the attempt no longer owns the run."""
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            label_model=label_model,
            snapshot_hash=sha256,
            n_train_pairs=n_train,
            n_test_pairs=n_test,
            n_votes=n_votes,
            snapshot_at=taken_at,
            config=config,
        )
    )


def training_run_fail(*, run_id: int, attempt: int, error: str) -> bool:
    now = timezone.now()
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.FAILED, error=error[:5000], finished_at=now, heartbeat_at=now, phase="failed"
        )
    )


def training_run_fail_task(*, run_id: int, task_id: str, error: str) -> bool:
    """Safety net for a task that raised past the service: fail the run it claimed."""
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, celery_task_id=task_id).update(
            status=Status.FAILED, error=error[:5000], finished_at=timezone.now(), phase="failed"
        )
    )


def training_run_time_out(*, run_id: int, task_id: str, limit_seconds: int) -> bool:
    """The worker's parent killed the run at the hard time limit: fail it "timed out", for good.

    Called from the worker's main process (the child is gone), so it also
    removes what the attempt left on disk. Never requeued: the same run
    would only hit the same limit again.
    """
    run = TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, celery_task_id=task_id).first()
    if run is None:
        return False
    now = timezone.now()
    changed = TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, attempt=run.attempt).update(
        status=Status.FAILED,
        finished_at=now,
        heartbeat_at=now,
        phase="timed out",
        error=f"Timed out: stopped at the hard time limit of {limit_seconds} s (TRAINING_HARD_TIME_LIMIT); "
        "not retried. Train on less data or fewer epochs, or raise the limit.",
    )
    if changed:
        artifacts.attempt_files_remove(
            project_id=run.project_id, run_id=run_id, attempt=run.attempt, key=run.artifact_key
        )
    return bool(changed)


def training_run_mark_cancelled(*, run_id: int, attempt: int) -> bool:
    now = timezone.now()
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.CANCELLED,
            finished_at=now,
            heartbeat_at=now,
            phase="cancelled",
            error="Cancelled while running.",
        )
    )


@dataclass(frozen=True)
class Prediction:
    pair_id: int
    margin: float  # r_a - r_b
    disagreement: float | None = None


def training_run_succeed(
    *,
    run_id: int,
    attempt: int,
    artifact_dir: str,
    checksums: dict[str, str],
    metrics: dict[str, Any],
    predictions: Sequence[Prediction],
    winners: dict[int, str] | None = None,
    timings: dict[str, float] | None = None,
) -> ModelVersion | None:
    """Record the new version, its predictions and the promotion decision, in one transaction.

    `winners` labels the held-out pairs the candidate is judged on (pair id
    -> a or b, as in its snapshot); the versions it is compared with have
    been scored on them beforehand (`gate.references_prepare`), so this
    reads their cached margins. Returns None, writing nothing, when this
    attempt no longer owns the run; and marks the run cancelled instead when
    Cancel came in at the last moment.
    """
    now = timezone.now()
    metrics = _json_safe(metrics)
    with transaction.atomic():
        run = TrainingRun.objects.filter(pk=run_id).only("project_id").first()
        if run is None:
            return None
        Project.objects.select_for_update().filter(pk=run.project_id).first()
        run = (
            TrainingRun.objects.select_for_update()
            .filter(pk=run_id, status=Status.RUNNING, attempt=attempt)
            .select_related("project")
            .first()
        )
        if run is None:
            return None
        if run.cancel_requested:
            training_run_mark_cancelled(run_id=run_id, attempt=attempt)
            return None
        project = run.project
        # The live version and the recent ones, read under the project lock, before the new one exists.
        winners = winners or {}
        active, recent = gate.references_read(project_id=project.pk, pair_ids=winners)
        number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            project=project, run=run, number=number, artifact_dir=artifact_dir, checksums=checksums, metrics=metrics
        )
        # Pairs deleted while the run trained have nothing to attach to.
        alive = set(Pair.objects.filter(pk__in=[p.pair_id for p in predictions]).values_list("pk", flat=True))
        PairPrediction.objects.bulk_create(
            [
                PairPrediction(version=version, pair_id=p.pair_id, margin=p.margin, disagreement=p.disagreement)
                for p in predictions
                if p.pair_id in alive and math.isfinite(p.margin)
            ],
            batch_size=1000,
        )
        policy = RetrainPolicy.for_project(project)
        decision = promotion_decide(
            metrics=metrics,
            candidate_margins={p.pair_id: p.margin for p in predictions},
            winners=winners,
            active=active,
            recent=recent,
            rules=Rules(
                delta=policy.promotion_delta,
                alpha=settings.RM_PROMOTION_ALPHA,
                min_pairs=settings.RM_PROMOTION_MIN_PAIRS,
            ),
        )
        if decision.promote:
            _version_make_active(version=version, user=None, now=now)
        TrainingRun.objects.filter(pk=run_id).update(
            status=Status.SUCCEEDED,
            progress=1.0,
            phase="done",
            promoted=decision.promote,
            # The run keeps the pipeline's own timings beside the engine's metrics.
            metrics={**metrics, "pipeline_seconds": _json_safe(timings or {})},
            promotion_note=decision.note,
            promotion=_json_safe(decision.figures),
            finished_at=now,
            heartbeat_at=now,
            error="",
        )
    if run.kind == TrainingRun.Kind.HEAD:  # a fresher head: re-order what the queue serves next
        transaction.on_commit(lambda: queue_order_refresh_enqueue(project_id=project.pk, version_id=version.pk))
    log.info("Run %s produced %s v%s: %s", run_id, project.slug, number, decision.note)
    return version


def queue_order_refresh_enqueue(*, project_id: int, version_id: int | None = None) -> bool:
    """Ask a worker to re-order the project's queue; a broker error is logged (the next head retries)."""
    from rewardmodel.tasks import queue_order_refresh_task

    try:
        queue_order_refresh_task.apply_async(args=[project_id, version_id], queue=settings.RM_RUN_QUEUES["head"])
    except Exception as exc:
        log.warning("Could not queue the queue re-order of project %s: %s", project_id, exc)
        return False
    return True


def _json_safe(value: Any) -> Any:
    """NaN and inf as None: JSON has no such numbers, and PostgreSQL's jsonb rejects them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------- #
# Cancel
# --------------------------------------------------------------------------- #
def training_run_cancel(*, run: TrainingRun, user: AbstractBaseUser | None = None) -> TrainingRun:
    """Cancel a queued run at once; ask a running one to stop (its worker
    sees the flag within a heartbeat and stops the engine)."""
    now = timezone.now()
    cancelled_queued = TrainingRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        phase="cancelled",
        error="Cancelled before it started.",
    )
    # Not queued (any more): flag it for its worker if it is running.
    if not cancelled_queued and not TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        cancel_requested=True
    ):
        run.refresh_from_db()
        raise Conflict(f"Run {run.pk} has already {run.status}; there is nothing to cancel.")
    log.info("Cancel of run %s requested by %s", run.pk, getattr(user, "username", None) or "system")
    run.refresh_from_db()
    return run


# --------------------------------------------------------------------------- #
# Reconciler: lost workers and unsent messages
# --------------------------------------------------------------------------- #
@dataclass
class ReconcileReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def training_runs_reconcile(*, now: datetime | None = None) -> ReconcileReport:
    """Fix runs that no worker is looking after.

    A running run whose heartbeat stopped for RM_HEARTBEAT_TIMEOUT_SECONDS
    lost its worker: it goes back to the queue for another attempt while
    it has attempts left (RM_MAX_ATTEMPTS), else it fails "worker lost". One
    that started longer ago than the hard time limit fails "timed out"
    instead, never requeued.
    A queued run whose message never reached the broker (or long ago) is
    sent again; a duplicate message is harmless, since claiming is
    conditional. Safe to run anywhere, any number of times at once.
    """
    now = now or timezone.now()
    report = ReconcileReport()
    deadline = now - timedelta(seconds=settings.RM_HEARTBEAT_TIMEOUT_SECONDS)
    stale = TrainingRun.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=deadline) | Q(heartbeat_at__isnull=True)
    )
    hard_deadline = now - timedelta(seconds=settings.TRAINING_HARD_TIME_LIMIT)
    fields = ("id", "project_id", "attempt", "heartbeat_at", "started_at", "cancel_requested", "artifact_key")
    for run in stale.only(*fields):
        mine = TrainingRun.objects.filter(
            pk=run.pk, status=Status.RUNNING, attempt=run.attempt, heartbeat_at=run.heartbeat_at
        )
        seen = f"no heartbeat since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if run.heartbeat_at else "no heartbeat"
        if run.cancel_requested:
            changed = mine.update(
                status=Status.CANCELLED,
                finished_at=now,
                phase="cancelled",
                error=f"Cancelled; the worker was lost ({seen}).",
            )
            outcome = report.cancelled
        elif run.started_at is not None and run.started_at < hard_deadline:
            # Past the hard time limit: its worker's parent should have marked it, but
            # went down with it. Another attempt would only hit the same limit.
            changed = mine.update(
                status=Status.FAILED,
                finished_at=now,
                phase="timed out",
                error=f"Timed out: running past the hard time limit of {settings.TRAINING_HARD_TIME_LIMIT} s "
                f"(TRAINING_HARD_TIME_LIMIT) when its worker was lost ({seen}); not retried.",
            )
            outcome = report.failed
        elif run.attempt < settings.RM_MAX_ATTEMPTS:
            changed = mine.update(
                status=Status.QUEUED,
                enqueued_at=None,
                phase="requeued",
                progress=0.0,
                error=f"Worker lost on attempt {run.attempt} ({seen}); retrying.",
            )
            outcome = report.requeued
        else:
            changed = mine.update(
                status=Status.FAILED,
                finished_at=now,
                phase="failed",
                error=f"Worker lost ({seen}, attempt {run.attempt} of {settings.RM_MAX_ATTEMPTS}).",
            )
            outcome = report.failed
        if changed:  # only the reconciler whose UPDATE won cleans up, and only that attempt's files
            outcome.append(run.pk)
            artifacts.attempt_files_remove(
                project_id=run.project_id, run_id=run.pk, attempt=run.attempt, key=run.artifact_key
            )

    grace = now - timedelta(seconds=settings.RM_ENQUEUE_GRACE_SECONDS)
    unsent = TrainingRun.objects.filter(status=Status.QUEUED).filter(
        Q(enqueued_at__isnull=True, created_at__lt=grace)
        | Q(enqueued_at__lt=now - timedelta(seconds=settings.RM_QUEUED_RESEND_SECONDS))
        | Q(pk__in=report.requeued)
    )
    for run_id in unsent.values_list("pk", flat=True):
        if training_run_enqueue(run_id=run_id):
            report.resent.append(run_id)
    if report.requeued or report.failed or report.cancelled or report.resent:
        log.warning("Reconciled training runs: %s", report)
    return report


# --------------------------------------------------------------------------- #
# Scheduler
# --------------------------------------------------------------------------- #
def training_runs_schedule_due(
    *, now: datetime | None = None, kind: str = TrainingRun.Kind.FINETUNE
) -> list[TrainingRun]:
    """Queue a run of `kind` for every project whose policy says one is due (the beat tasks).

    A project whose last RM_PAUSE_AFTER_FAILURES runs all failed has its
    policy paused first (`retrain_policy_pause_if_failing`): retrying what
    keeps failing only burns the GPU.
    """
    now = now or timezone.now()
    started = []
    for project in Project.objects.order_by("pk"):
        policy = RetrainPolicy.for_project(project)
        if retrain_policy_pause_if_failing(project=project, policy=policy, now=now):
            continue
        reason = selectors.retrain_due_reason(project=project, policy=policy, now=now, kind=kind)
        if reason is None:
            continue
        try:
            run = training_run_request(project=project, trigger=TrainingRun.Trigger.SCHEDULE, kind=kind)
        except RunAlreadyActive:
            continue
        except InvalidInput as exc:
            log.warning("Not retraining %s although due (%s): %s", project.slug, reason, exc.message)
            continue
        TrainingRun.objects.filter(pk=run.pk).update(promotion_note=f"Scheduled: {reason}.")
        started.append(run)
    return started


# --------------------------------------------------------------------------- #
# Versions: promotion and rollback
# --------------------------------------------------------------------------- #
def _version_make_active(*, version: ModelVersion, user: AbstractBaseUser | None, now: datetime) -> None:
    # Deactivate first: the partial unique index allows one active row per project.
    ModelVersion.objects.filter(project_id=version.project_id, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True, promoted_by=user, promoted_at=now)
    version.refresh_from_db()
    signals.version_activated.send(sender=ModelVersion, version=version)


def model_version_activate(*, version: ModelVersion, user: AbstractBaseUser) -> ModelVersion:
    """Make `version` the project's live model (promotion by hand, or rollback).

    Refuses a version whose metrics are not finite, or whose files are
    missing or differ from the checksums recorded when it was trained.
    """
    if version.is_active:
        return version
    if version.pruned_at is not None:
        raise Conflict(
            f"Version {version.number} cannot go live: its files were pruned on {version.pruned_at:%Y-%m-%d} "
            "to free disk (pin versions you may want back)."
        )
    bad = non_finite_metrics(version.metrics)
    if bad:
        raise InvalidInput(f"Version {version.number} cannot go live: metrics not finite ({', '.join(bad)}).")
    mismatched = artifacts.checksums_mismatched(folder=Path(version.artifact_dir), expected=version.checksums)
    if mismatched:
        raise Conflict(
            f"Version {version.number} cannot go live: its files are missing or changed ({', '.join(mismatched[:5])})."
        )
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=version.project_id).first()
        _version_make_active(version=version, user=user, now=timezone.now())
    log.info("Version %s v%s activated by %s", version.project_id, version.number, user.get_username())
    return version
