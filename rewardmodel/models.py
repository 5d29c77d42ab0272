"""Training runs, the model versions they produce, and when to retrain.

A run moves queued -> running -> succeeded | failed | cancelled; only
`rewardmodel.services` changes its status, always with a conditional UPDATE
so that a redelivered task message can never run the same attempt twice.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from labeling.models import Project


def new_artifact_key() -> str:
    """A random part for a run's folder names: unique even beside another database's leftovers."""
    return uuid.uuid4().hex[:12]


# How a project's votes become training labels (preferences.label_models).
LABEL_MODEL_CHOICES = [
    ("majority", "majority vote"),
    ("dawid_skene", "Dawid-Skene (reliability-weighted soft labels)"),
]


class TrainingRun(models.Model):
    class Kind(models.TextChoices):
        FINETUNE = "finetune", "fine-tune"
        HEAD = "head"

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
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.FINETUNE,
        help_text="finetune: the whole backbone (GPU workers); head: a linear head on cached features (seconds).",
    )
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
    label_model = models.CharField(
        max_length=16, blank=True, help_text="The label model the training labels came from; set with the snapshot."
    )
    snapshot_hash = models.CharField(max_length=64, blank=True, help_text="sha256 over pair ids and vote counts.")
    snapshot_at = models.DateTimeField(
        null=True, blank=True, help_text="When the training data was read; later votes count as new."
    )
    n_train_pairs = models.PositiveIntegerField(null=True, blank=True)
    n_test_pairs = models.PositiveIntegerField(null=True, blank=True)
    n_votes = models.PositiveIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    progress_metrics = models.JSONField(default=dict, blank=True, help_text="The engine's running metrics, live.")
    promoted = models.BooleanField(null=True, blank=True, help_text="Null until the run finishes.")
    promotion_note = models.TextField(blank=True, help_text="Why the new version did or did not go live.")
    promotion = models.JSONField(
        default=dict,
        blank=True,
        help_text="The paired comparison with the live version: n, candidate_accuracy, active_accuracy, "
        "difference, ci, p_value, decision, reason.",
    )
    error = models.TextField(blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    artifact_key = models.CharField(
        max_length=12,
        default=new_artifact_key,
        editable=False,
        help_text="In the run's folder names, so they never collide with folders another database left behind.",
    )
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task message was last sent; empty while the broker was down."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one queued or running run per project and kind: a head
            # retrain never waits behind a fine-tune.
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_project_kind",
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
    pinned = models.BooleanField(default=False, help_text="Keep this version's files whatever their age.")
    pruned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its folder was deleted to free disk; the record stays, it cannot go live.",
    )
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        permissions = [("score", "Can score responses with the active reward model")]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="version_number_per_project"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="one_active_version_per_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.number}"


class PairPrediction(models.Model):
    """A version's reward margin on one voted test-split pair: the dashboard's
    model-vs-human figures and the promotion gate's score cache.

    In PAIR terms: margin = r(response_a) - r(response_b), so it compares
    straight with the votes (a / b), whichever side won. A version gets its
    rows when trained, and more when the gate scores it on held-out pairs
    voted later (rewardmodel.gate).
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    pair = models.ForeignKey("labeling.Pair", on_delete=models.CASCADE, related_name="predictions")
    margin = models.FloatField(help_text="r_a - r_b.")
    disagreement = models.FloatField(null=True, blank=True, help_text="Ensemble members' margin std (K > 1).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "pair"], name="prediction_once_per_version_pair")]

    def __str__(self) -> str:
        return f"v{self.version_id} pair {self.pair_id}: {self.margin:+.3f}"


class RetrainPolicy(models.Model):
    """When the scheduler retrains a project, and how a new version goes live.

    Projects without a row use the field defaults (`RetrainPolicy.for_project`).
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="retrain_policy")
    enabled = models.BooleanField(default=True, help_text="Let the scheduler retrain this project on its own.")
    min_new_votes = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(1)],
        help_text="Retrain once this many votes arrived since the last successful run.",
    )
    max_interval_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Also retrain when this long has passed since the last successful run and any vote arrived.",
    )
    head_enabled = models.BooleanField(
        default=True, help_text="Retrain the project's linear head on its own as votes arrive (fast, on the CPU)."
    )
    head_min_new_votes = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1)],
        help_text="Retrain the head once this many votes arrived since its last run's data was read.",
    )
    label_model = models.CharField(
        max_length=16,
        choices=LABEL_MODEL_CHOICES,
        default="majority",
        help_text="How votes become training labels: the majority rule, or Dawid-Skene's reliability-weighted "
        "posterior as soft labels (docs/label_quality.md). Held-out labels always use the majority rule.",
    )
    promotion_delta = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A new version goes live only if, on the same held-out pairs, its accuracy is at most this far "
        "below the best of the recent live versions' (and it is not significantly worse than the live one).",
    )
    train_config = models.JSONField(
        default=dict, blank=True, help_text='TrainConfig fields that override the defaults, e.g. {"epochs": 3}.'
    )
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the scheduler paused itself after consecutive failed runs."
    )
    pause_reason = models.TextField(blank=True)
    resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="Failures before this do not count towards the next pause."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retrain policies"

    def __str__(self) -> str:
        return f"retrain policy of {self.project_id}"

    @classmethod
    def for_project(cls, project: Project) -> RetrainPolicy:
        """The project's policy as stored now, or an unsaved one with the defaults.

        Read from the database each time: `project.retrain_policy` may be a
        copy cached before an admin changed it."""
        return cls.objects.filter(project_id=project.pk).first() or cls(project_id=project.pk)


class QueueOrder(models.Model):
    """The last re-ordering of a project's queue by its acquisition strategy (rewardmodel.acquisition)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="queue_order")
    strategy = models.CharField(max_length=16)
    version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The head whose scores ordered the queue (none for random).",
    )
    ordered_pairs = models.PositiveIntegerField(default=0, help_text="Open train pairs given a new rank.")
    refreshes = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"queue order of {self.project_id}: {self.strategy}"
