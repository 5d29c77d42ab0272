"""API tokens move here from labeling, their table and rows untouched."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_types(apps, old: str, new: str, models: tuple[str, ...]) -> None:
    """Give the moved models' content types (and so their permissions) to their new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    _move_content_types(apps, "labeling", "accounts", ("apitoken",))


def backwards(apps, schema_editor):
    _move_content_types(apps, "accounts", "labeling", ("apitoken",))


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("labeling", "0004_vote_fold_queue"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay as they are (db_table keeps their names): only Django's idea of
        # which app owns the models moves. labeling 0005 drops them from labeling's state.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=100)),
                        (
                            "prefix",
                            models.CharField(help_text="The first characters, to tell tokens apart.", max_length=12),
                        ),
                        ("key_hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "labeling_apitoken",
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
