"""Training runs and the model versions they produce."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Project


class TrainingRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        ADMIN = "admin"
        API = "api"
        CLI = "cli"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1 over the whole run.")
    phase = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True, help_text="The engine's TrainConfig as a dict.")
    # The data the run trained on, fixed when it starts.
    snapshot_hash = models.CharField(max_length=64, blank=True, help_text="sha256 over pair ids and vote counts.")
    n_train_pairs = models.PositiveIntegerField(null=True, blank=True)
    n_test_pairs = models.PositiveIntegerField(null=True, blank=True)
    n_votes = models.PositiveIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    promoted = models.BooleanField(null=True, blank=True, help_text="Null until the run finishes.")
    promotion_note = models.TextField(blank=True, help_text="Why the new version did or did not go live.")
    error = models.TextField(blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one queued or running run per project.
            models.UniqueConstraint(
                fields=["project"], condition=Q(status__in=["queued", "running"]), name="one_active_run_per_project"
            ),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="run_project_time_idx")]
        permissions = [
            ("view_dashboard", "Can view the reviewer dashboard"),
            ("retrain", "Can start and cancel training runs and promote versions"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    number = models.PositiveIntegerField(help_text="1, 2, 3 ... within the project.")
    artifact_dir = models.CharField(max_length=500)
    checksums = models.JSONField(default=dict, help_text="sha256 of each artifact file, by relative path.")
    metrics = models.JSONField(default=dict)
    is_active = models.BooleanField(default=False)
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="version_number_per_project"),
            models.UniqueConstraint(fields=["project"], condition=Q(is_active=True), name="one_active_version_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.number}"
