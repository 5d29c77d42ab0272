"""Celery tasks for the dashboard: thin, a service call each."""

from __future__ import annotations

from celery import shared_task

from dashboard import aggregates, quality


@shared_task(name="dashboard.aggregates_fold", ignore_result=True)
def aggregates_fold_task() -> None:
    """Fold live votes into the dashboard aggregates (beat, every few seconds; see dashboard.aggregates)."""
    aggregates.aggregates_fold_all()


@shared_task(name="dashboard.reliability_refit", ignore_result=True)
def reliability_refit_task() -> None:
    """Refit the label model of each project with new votes, for the annotators' reliability (dashboard.quality)."""
    quality.reliability_refit_all()
