"""Created the fold beat row once; it is now declared in dashboard/schedules.py and created
after every migrate (lib.beat), so this migration does nothing any more."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("rewardmodel", "0003_periodic_tasks"),
        ("labeling", "0004_vote_fold_queue"),
    ]

    operations = []
