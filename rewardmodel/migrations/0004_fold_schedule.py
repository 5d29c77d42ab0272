"""The beat schedule that folds live votes into the dashboard aggregates (labeling.aggregates)."""
from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds, description)
    ("Fold live votes into the dashboard aggregates", "labeling.aggregates_fold", 5,
     "Counts the votes stored since the last fold in the agreement, annotator and model figures; dashboard "
     "pages fold before they read, so this bounds how stale the annotators' own figures get."),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "description": description, "queue": "default"}
        )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rewardmodel", "0003_periodic_tasks"),
        ("labeling", "0004_vote_fold_queue"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
