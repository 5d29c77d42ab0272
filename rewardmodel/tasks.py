"""Celery tasks: an id comes in, a service is called. Results live in the database.

`train_run` is routed to the `training` queue (settings.CELERY_TASK_ROUTES);
the periodic tasks run on `default`, from the PeriodicTask rows declared
in rewardmodel/schedules.py (editable in the Django admin).
"""

from __future__ import annotations

import importlib

from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import worker_init
from django.conf import settings
from django.db import connections

from labeling.models import Project
from rewardmodel import acquisition, execution, features, retention, services
from rewardmodel.models import ModelVersion, TrainingRun


@worker_init.connect
def preload_engine(**kwargs) -> None:
    """Import torch, transformers and the engine in the worker's main process.

    Tasks run in children forked from this process (on the training worker a
    fresh child per run, max tasks per child 1): preloaded here, a run does not
    pay the seconds of importing them.
    Nothing runs on a device here, so forking stays safe (CUDA starts in the child).
    """
    if settings.RM_PRELOAD_ENGINE:
        importlib.import_module("rewardmodel.training").train  # noqa: B018  (the lazy import)
        importlib.import_module("rewardmodel.training").RewardScorer  # noqa: B018


class TrainRunTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """A task that raised past the service, or one killed at the hard time limit.

        The service records its own failures, so this is the safety net that
        frees the project. At the hard limit it runs in the worker's *parent*
        process, the child having been killed: the run is marked timed out
        there, not left running for the reconciler to requeue.
        """
        run_id = args[0] if args else (kwargs or {}).get("run_id")
        if run_id is None:
            return
        try:
            if isinstance(exc, TimeLimitExceeded):
                services.training_run_time_out(
                    run_id=run_id, task_id=task_id, limit_seconds=settings.TRAINING_HARD_TIME_LIMIT
                )
            else:
                services.training_run_fail_task(run_id=run_id, task_id=task_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            # In the parent, a connection left open would be shared with the next forked child.
            if isinstance(exc, TimeLimitExceeded):
                connections.close_all()


@shared_task(
    bind=True,
    base=TrainRunTask,
    name="rewardmodel.tasks.train_run",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def train_run(self, run_id: int) -> str:
    return execution.training_run_execute(
        run_id=run_id, task_id=self.request.id or "", host=self.request.hostname or ""
    )


@shared_task(name="rewardmodel.tasks.retrain_due_projects", ignore_result=True, soft_time_limit=120, time_limit=180)
def retrain_due_projects() -> list[int]:
    return [run.pk for run in services.training_runs_schedule_due()]


@shared_task(name="rewardmodel.tasks.retrain_heads_due", ignore_result=True, soft_time_limit=60, time_limit=90)
def retrain_heads_due() -> list[int]:
    return [run.pk for run in services.training_runs_schedule_due(kind=TrainingRun.Kind.HEAD)]


@shared_task(name="rewardmodel.tasks.features_fill", ignore_result=True, acks_late=True)
def features_fill_task(project_id: int) -> dict:
    """Embed the project's new pairs for its heads (see rewardmodel.features)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {}
    report = features.features_fill(project=project)
    return {"embedded": report.embedded_sides, "stored": report.stored_sides, "skipped": report.skipped}


@shared_task(name="rewardmodel.tasks.queue_order_refresh", ignore_result=True, acks_late=True)
def queue_order_refresh_task(project_id: int, version_id: int | None = None) -> dict:
    """Re-order the project's queue by its acquisition strategy (see rewardmodel.acquisition)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {}
    version = ModelVersion.objects.filter(pk=version_id, project=project).first() if version_id else None
    refresh = acquisition.queue_order_refresh(project=project, version=version)
    return {"strategy": refresh.strategy, "ordered": refresh.ordered, "skipped": refresh.skipped}


@shared_task(name="rewardmodel.tasks.prune_models", ignore_result=True, soft_time_limit=600, time_limit=900)
def prune_models() -> dict:
    reports = retention.model_versions_prune_all()
    return {
        pid: {"pruned": r.pruned, "orphans": r.orphans_removed, "leftovers": r.leftovers} for pid, r in reports.items()
    }


@shared_task(name="rewardmodel.tasks.reconcile_runs", ignore_result=True, soft_time_limit=120, time_limit=180)
def reconcile_runs() -> dict:
    report = services.training_runs_reconcile()
    return {
        "requeued": report.requeued,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "resent": report.resent,
    }
