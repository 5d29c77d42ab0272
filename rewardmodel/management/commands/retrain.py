"""`manage.py retrain --project SLUG [--kind head|finetune] [--wait]`: queue a training run.

The last line printed is the run's status as JSON (at least id and
status), so scripts can `tail -n1 | jq`. With --wait it follows the run
until it ends and exits 1 unless it succeeded. A project that already has
a queued or running run of that kind gets "already running" and that run's
JSON, exit 1. `--kind head` fits a linear head on cached features (seconds);
the default, `finetune`, trains the whole backbone (GPU workers).
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from labeling.selectors import project_get
from lib.errors import NotFound, ServiceError
from rewardmodel import services
from rewardmodel.errors import RunAlreadyActive
from rewardmodel.models import TrainingRun


def run_status_json(run: TrainingRun) -> str:
    version = getattr(run, "model_version", None) if run.status == TrainingRun.Status.SUCCEEDED else None
    return json.dumps(
        {
            "id": run.pk,
            "project": run.project.slug,
            "kind": run.kind,
            "status": run.status,
            "progress": round(run.progress, 4),
            "phase": run.phase,
            "attempt": run.attempt,
            "promoted": run.promoted,
            "promotion_note": run.promotion_note,
            "version": version.number if version else None,
            "held_out_accuracy": run.metrics.get("held_out_accuracy"),
            "error": run.error,
        }
    )


class Command(BaseCommand):
    help = "Queue a training run for a project; with --wait, follow it until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--kind",
            choices=TrainingRun.Kind.values,
            default=TrainingRun.Kind.FINETUNE,
            help="head: a linear head on cached features (seconds on a CPU); finetune (default): the whole backbone.",
        )
        parser.add_argument("--wait", action="store_true", help="Wait for the run to finish.")
        parser.add_argument("--timeout", type=float, default=None, help="Give up waiting after this many seconds.")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between progress lines with --wait.")

    def handle(self, *args, project: str, kind: str, wait: bool, timeout: float | None, poll: float, **options):
        try:
            found = project_get(slug=project)
        except NotFound:
            raise CommandError(f"No project with slug {project!r}.") from None
        try:
            run = services.training_run_request(project=found, trigger=TrainingRun.Trigger.CLI, kind=kind)
        except RunAlreadyActive as exc:
            self.stderr.write(f"Already running: run {exc.run.pk} is {exc.run.status}.")
            self.stdout.write(run_status_json(exc.run))
            raise SystemExit(1) from None
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        if not wait:
            self.stdout.write(run_status_json(run))
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            run.refresh_from_db()
            line = f"{run.kind} run {run.pk}: {run.status} {run.progress:.0%} {run.phase}"
            if line != last:
                self.stderr.write(line)
                last = line
            if not run.is_active:
                break
            if deadline is not None and time.monotonic() > deadline:
                self.stdout.write(run_status_json(run))
                raise CommandError(f"Run {run.pk} still {run.status} after {timeout:.0f} s.")
            time.sleep(poll)
        self.stdout.write(run_status_json(run))
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise SystemExit(1)
