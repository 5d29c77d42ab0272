"""Celery tasks for the dashboard: thin, a service call each."""

from __future__ import annotations

from celery import shared_task

from dashboard import aggregates


@shared_task(name="dashboard.aggregates_fold", ignore_result=True)
def aggregates_fold_task() -> None:
    """Fold live votes into the dashboard aggregates (beat, every few seconds; see dashboard.aggregates)."""
    aggregates.aggregates_fold_all()
