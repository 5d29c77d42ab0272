"""Celery tasks for labeling: thin, an id in and a service call."""

from __future__ import annotations

from celery import shared_task

from labeling import import_jobs


@shared_task(name="labeling.import_job_run", ignore_result=True)
def import_job_run_task(job_id: int) -> None:
    """Import an uploaded file (see labeling.import_jobs); progress goes to the job row."""
    import_jobs.import_job_run(job_id=job_id)


@shared_task(name="labeling.import_jobs_reconcile", ignore_result=True, soft_time_limit=120, time_limit=180)
def import_jobs_reconcile_task() -> dict:
    report = import_jobs.import_jobs_reconcile()
    return {"requeued": report.requeued, "failed": report.failed, "resent": report.resent}
