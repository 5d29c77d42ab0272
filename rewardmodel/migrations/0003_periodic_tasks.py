"""The two beat schedules, as django-celery-beat rows so admins can edit them.

Created once here; a changed interval or a disabled task in the admin is
left alone by later migrations.
"""
from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds, description)
    ("Retrain projects that are due", "rewardmodel.tasks.retrain_due_projects", 60,
     "Queues a training run for each project whose RetrainPolicy says it is due (new votes or interval)."),
    ("Reconcile training runs", "rewardmodel.tasks.reconcile_runs", 30,
     "Requeues or fails runs whose worker stopped sending heartbeats; resends runs the broker never got."),
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
        ("rewardmodel", "0002_runs_policy_predictions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
