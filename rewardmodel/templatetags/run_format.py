"""Runs in words: who started a run, what it is doing, how long it has left, what became of it.

The run pages show these instead of the stored codes (`admin`, `train_batch_accuracy`, `lr`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from rewardmodel.models import TrainingRun

register = template.Library()

_TRIGGER = {
    TrainingRun.Trigger.ADMIN: "by hand",
    TrainingRun.Trigger.SCHEDULE: "by the schedule",
    TrainingRun.Trigger.API: "through the API",
    TrainingRun.Trigger.CLI: "from the command line",
}

# The engine's and the pipeline's phases (rewardmodel.execution, training.trainer).
_PHASE = {
    "": "waiting for a worker",
    "starting": "starting",
    "snapshot": "reading the votes",
    "tokenize": "preparing the text",
    "train": "training",
    "eval": "checking held-out accuracy",
    "save": "saving",
    "publishing": "saving the model",
    "predicting": "scoring the held-out pairs",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}

# The engine's running metrics, in the order shown: (key, label, format).
_METRICS = (
    ("epoch", "Epoch", "int"),
    ("member", "Ensemble member", "member"),
    ("train_loss", "Training loss (recent batches)", "num"),
    ("train_batch_accuracy", "Training accuracy (recent batches)", "pct"),
    ("eval_accuracy", "Held-out accuracy so far", "pct"),
    ("lr", "Learning rate", "sci"),
)


@register.filter
def trigger_text(run: TrainingRun) -> str:
    """ "by hand, by adam", "by the schedule", ..."""
    text = _TRIGGER.get(run.trigger, run.trigger)
    if run.requested_by_id and run.trigger != TrainingRun.Trigger.SCHEDULE:
        text += f" by {run.requested_by.get_username()}"
    return text


@register.filter
def phase_text(phase: str) -> str:
    return _PHASE.get(phase or "", (phase or "").replace("_", " "))


def _format(value, kind: str) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if kind == "int":
        return f"{int(value)}"
    if kind == "member":
        return f"{int(value) + 1}"  # the engine counts members from 0
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "sci":
        return f"{value:.1e}"
    return f"{value:.3f}"


@register.filter
def progress_rows(metrics: dict | None) -> list[tuple[str, str]]:
    """The running metrics as (label, value) in words; keys this page does not know keep their name."""
    metrics = dict(metrics or {})
    rows = [(label, _format(metrics.pop(key), kind)) for key, label, kind in _METRICS if key in metrics]
    rows += [(key.replace("_", " ").capitalize(), _format(value, "num")) for key, value in sorted(metrics.items())]
    return rows


def run_eta(run: TrainingRun, now: datetime | None = None) -> timedelta | None:
    """Time left, from the pace so far: elapsed × (1 − progress) / progress. None while
    too little is done to tell (the first tenth includes loading the model)."""
    if run.status != TrainingRun.Status.RUNNING or run.started_at is None or not 0.1 <= run.progress < 1:
        return None
    elapsed = (now or timezone.now()) - run.started_at
    if elapsed < timedelta(seconds=3):
        return None
    return elapsed * (1 - run.progress) / run.progress


def duration_text(left: timedelta) -> str:
    seconds = max(1, int(left.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@register.filter
def eta_text(run: TrainingRun) -> str:
    """ "about 3 min left", "estimating time left…" or "" when the run is not running."""
    if run.status != TrainingRun.Status.RUNNING:
        return ""
    left = run_eta(run)
    return "estimating time left…" if left is None else f"about {duration_text(left)} left"


@register.filter
def outcome_text(run: TrainingRun) -> str:
    """What became of a finished run's version: promoted on its own, by hand, or not."""
    if run.status != TrainingRun.Status.SUCCEEDED:
        return ""
    version = getattr(run, "model_version", None)
    if run.promoted:
        text = "promoted"
    elif version is not None and version.promoted_at is not None:
        who = version.promoted_by.get_username() if version.promoted_by_id else "someone"
        text = f"promoted by hand by {who}"
    else:
        text = "not promoted"
    if version is not None and version.is_active:
        text += " · live"
    return text
