"""ApiToken moved to accounts, the dashboard aggregates to dashboard: dropped from labeling's
state only. Their tables and rows stay; the new apps' 0001 migrations own them now."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_vote_fold_queue"),
        ("accounts", "0001_initial"),
        ("dashboard", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="apitoken",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="projectstats",
                    name="project",
                ),
                migrations.RemoveField(
                    model_name="tallybucket",
                    name="project",
                ),
                migrations.DeleteModel(
                    name="AnnotatorStats",
                ),
                migrations.DeleteModel(
                    name="ApiToken",
                ),
                migrations.DeleteModel(
                    name="ProjectStats",
                ),
                migrations.DeleteModel(
                    name="TallyBucket",
                ),
            ],
        ),
    ]
