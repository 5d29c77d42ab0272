"""Labeling's periodic task (created as an editable beat row by lib.beat)."""

from __future__ import annotations

from lib.beat import PeriodicTaskSpec

SCHEDULES = [
    PeriodicTaskSpec(
        "Reconcile import jobs",
        "labeling.import_jobs_reconcile",
        60,
        "Requeues or fails imports whose worker stopped reporting progress; resends queued ones the broker "
        "lost; deletes uploads no job needs any more.",
    ),
]
