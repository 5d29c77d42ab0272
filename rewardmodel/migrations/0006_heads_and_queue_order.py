import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0008_project_acquisition"),
        ("rewardmodel", "0005_promotion_gate_retention_pause"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueOrder",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("strategy", models.CharField(max_length=16)),
                (
                    "ordered_pairs",
                    models.PositiveIntegerField(default=0, help_text="Open train pairs given a new rank."),
                ),
                ("refreshes", models.PositiveIntegerField(default=0)),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="trainingrun",
            name="one_active_run_per_project",
        ),
        migrations.AddField(
            model_name="retrainpolicy",
            name="head_enabled",
            field=models.BooleanField(
                default=True,
                help_text="Retrain the project's linear head on its own as votes arrive (fast, on the CPU).",
            ),
        ),
        migrations.AddField(
            model_name="retrainpolicy",
            name="head_min_new_votes",
            field=models.PositiveIntegerField(
                default=20,
                help_text="Retrain the head once this many votes arrived since its last run's data was read.",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="kind",
            field=models.CharField(
                choices=[("finetune", "fine-tune"), ("head", "Head")],
                default="finetune",
                help_text="finetune: the whole backbone (GPU workers); head: a linear head on cached features (seconds).",
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="trainingrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["queued", "running"])),
                fields=("project", "kind"),
                name="one_active_run_per_project_kind",
            ),
        ),
        migrations.AddField(
            model_name="queueorder",
            name="project",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="queue_order", to="labeling.project"
            ),
        ),
        migrations.AddField(
            model_name="queueorder",
            name="version",
            field=models.ForeignKey(
                blank=True,
                help_text="The head whose scores ordered the queue (none for random).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="rewardmodel.modelversion",
            ),
        ),
    ]
