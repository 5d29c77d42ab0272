"""The beat schedules, as editable django-celery-beat rows.

Migrations 0003 and 0004 create them; `beat_schedules_ensure()` recreates
any that are missing (after a database flush, say) and leaves edited ones
alone.
"""
from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask

# (name, task, every seconds, description); migrations 0003 and 0004 hold a copy.
SCHEDULES = [
    ("Retrain projects that are due", "rewardmodel.tasks.retrain_due_projects", 60,
     "Queues a training run for each project whose RetrainPolicy says it is due (new votes or interval)."),
    ("Reconcile training runs", "rewardmodel.tasks.reconcile_runs", 30,
     "Requeues or fails runs whose worker stopped sending heartbeats; resends runs the broker never got."),
    ("Fold live votes into the dashboard aggregates", "labeling.aggregates_fold", 5,
     "Counts the votes stored since the last fold in the agreement, annotator and model figures; dashboard "
     "pages fold before they read, so this bounds how stale the annotators' own figures get."),
]


def beat_schedules_ensure() -> list[PeriodicTask]:
    out = []
    for name, task, seconds, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        periodic, _ = PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "description": description, "queue": "default"}
        )
        out.append(periodic)
    return out
