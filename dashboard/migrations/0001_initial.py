"""The dashboard aggregates move here from labeling, their tables and rows untouched."""

import django.db.models.deletion
from django.db import migrations, models


def _move_content_types(apps, old: str, new: str, models: tuple[str, ...]) -> None:
    """Give the moved models' content types (and so their permissions) to their new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    _move_content_types(apps, "labeling", "dashboard", ("tallybucket", "annotatorstats", "projectstats"))


def backwards(apps, schema_editor):
    _move_content_types(apps, "dashboard", "labeling", ("tallybucket", "annotatorstats", "projectstats"))


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("labeling", "0004_vote_fold_queue"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        # The tables stay as they are (db_table keeps their names): only Django's idea of
        # which app owns the models moves. labeling 0005 drops them from labeling's state.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProjectStats",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("active_version_id", models.BigIntegerField(blank=True, null=True)),
                        ("model_n", models.PositiveIntegerField(default=0)),
                        ("model_agree", models.PositiveIntegerField(default=0)),
                        ("model_n2", models.PositiveIntegerField(default=0)),
                        ("model_agree2", models.PositiveIntegerField(default=0)),
                        ("loo_n", models.PositiveIntegerField(default=0)),
                        ("loo_agree", models.PositiveIntegerField(default=0)),
                        (
                            "project",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="labeling.project"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "labeling_projectstats",
                    },
                ),
                migrations.CreateModel(
                    name="AnnotatorStats",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("votes", models.PositiveIntegerField(default=0)),
                        ("decisive", models.PositiveIntegerField(default=0, help_text="Votes for a or b.")),
                        ("ties", models.PositiveIntegerField(default=0, help_text="Tie and both-bad votes.")),
                        (
                            "sided",
                            models.PositiveIntegerField(
                                default=0, help_text="Decisive votes whose left side is known."
                            ),
                        ),
                        ("left_chosen", models.PositiveIntegerField(default=0)),
                        (
                            "longer_decidable",
                            models.PositiveIntegerField(
                                default=0, help_text="Decisive votes on pairs of unequal length."
                            ),
                        ),
                        ("longer_chosen", models.PositiveIntegerField(default=0)),
                        ("latency_n", models.PositiveIntegerField(default=0)),
                        (
                            "latency_hist",
                            models.JSONField(blank=True, default=dict, help_text="Log-spaced bucket index -> votes."),
                        ),
                        ("median_latency_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("loo_n", models.PositiveIntegerField(default=0)),
                        ("loo_agree", models.PositiveIntegerField(default=0)),
                        ("model_n", models.PositiveIntegerField(default=0)),
                        ("model_agree", models.PositiveIntegerField(default=0)),
                        ("flags", models.JSONField(blank=True, default=list)),
                        ("flag_count", models.PositiveSmallIntegerField(default=0)),
                        (
                            "annotator",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="labeling.annotator"
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="labeling.project"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "labeling_annotatorstats",
                        "indexes": [
                            models.Index(
                                fields=["project", "-flag_count", "-votes", "id"], name="annotator_stats_page_idx"
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(fields=("project", "annotator"), name="annotator_stats_unique")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TallyBucket",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("split", models.CharField(choices=[("train", "Train"), ("test", "Test")], max_length=5)),
                        ("n_a", models.PositiveIntegerField()),
                        ("n_b", models.PositiveIntegerField()),
                        ("n_tie", models.PositiveIntegerField(help_text="Ties and both-bad votes.")),
                        ("pairs", models.IntegerField(default=0)),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="labeling.project"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "labeling_tallybucket",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("project", "split", "n_a", "n_b", "n_tie"), name="tally_bucket_unique"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
