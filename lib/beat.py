"""Periodic tasks as editable django-celery-beat rows, each declared once by the app that owns it.

An app declares its tasks in its own `schedules.py` (`PeriodicTaskSpec`)
and registers them when it is ready; `periodic_tasks_ensure` creates the
rows that are missing, after every `migrate` (and a test's flush). A row an
admin edited (interval, enabled, queue) is left alone; only its task path
follows the code, so a task renamed in the code keeps its schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from django_celery_beat.models import IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str  # the row's unique name, shown in the admin
    task: str  # the Celery task name
    every_seconds: int
    description: str
    queue: str = "default"


_REGISTERED: dict[str, PeriodicTaskSpec] = {}


def periodic_tasks_register(*specs: PeriodicTaskSpec) -> None:
    """Declare periodic tasks (an app's `ready`); a name may be declared only once."""
    for spec in specs:
        known = _REGISTERED.get(spec.name)
        if known is not None and known != spec:
            raise ValueError(f"periodic task {spec.name!r} is declared twice, differently")
        _REGISTERED[spec.name] = spec


def periodic_tasks_ensure() -> list[PeriodicTask]:
    """The rows of every registered task, created where missing; edits to existing rows kept."""
    rows = []
    for spec in _REGISTERED.values():
        interval, _ = IntervalSchedule.objects.get_or_create(every=spec.every_seconds, period=IntervalSchedule.SECONDS)
        row, created = PeriodicTask.objects.get_or_create(
            name=spec.name,
            defaults={"task": spec.task, "interval": interval, "description": spec.description, "queue": spec.queue},
        )
        if not created and row.task != spec.task:
            PeriodicTask.objects.filter(pk=row.pk).update(task=spec.task)
            row.task = spec.task
        rows.append(row)
    return rows


def periodic_tasks_ensure_on_migrate(sender, **kwargs) -> None:
    # post_migrate fires once per app; the rows need django_celery_beat's tables.
    if kwargs.get("apps") is None or kwargs["apps"].is_installed("django_celery_beat"):
        periodic_tasks_ensure()
