"""Retraining's periodic tasks (created as editable beat rows by lib.beat)."""

from __future__ import annotations

from lib.beat import PeriodicTaskSpec

SCHEDULES = [
    PeriodicTaskSpec(
        "Retrain projects that are due",
        "rewardmodel.tasks.retrain_due_projects",
        60,
        "Queues a fine-tune for each project whose RetrainPolicy says one is due (new votes or interval).",
    ),
    PeriodicTaskSpec(
        "Retrain heads that are due",
        "rewardmodel.tasks.retrain_heads_due",
        5,
        "Queues a head run (linear head on cached features, seconds) for each project with enough new votes "
        "since its last head (RetrainPolicy.head_min_new_votes); at most one head run per project at a time.",
    ),
    PeriodicTaskSpec(
        "Reconcile training runs",
        "rewardmodel.tasks.reconcile_runs",
        30,
        "Requeues or fails runs whose worker stopped sending heartbeats; resends runs the broker never got.",
    ),
    PeriodicTaskSpec(
        "Prune old model folders",
        "rewardmodel.tasks.prune_models",
        3600,
        "Deletes the folders of versions that are not live, pinned, among the last RM_KEEP_VERSIONS or the "
        "promotion gate's references; reports folders this database does not know.",
    ),
]
