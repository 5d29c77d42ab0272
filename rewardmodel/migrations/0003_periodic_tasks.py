"""Created the retraining beat rows once; they are now declared in rewardmodel/schedules.py and
created after every migrate (lib.beat), so this migration does nothing any more."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("rewardmodel", "0002_runs_policy_predictions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = []
