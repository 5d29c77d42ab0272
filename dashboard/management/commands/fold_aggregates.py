"""Fold live votes into the dashboard aggregates: what the beat task does, from the shell.

For a deployment without Celery beat (run it from cron, or with --every as a
service), and for the labeling benchmark, which runs it beside the web
server as production runs beat. Each fold is safe beside live votes and
other folds (dashboard.aggregates.aggregates_fold).
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from dashboard.aggregates import aggregates_fold_all


class Command(BaseCommand):
    help = "Fold the votes waiting outside the dashboard aggregates into them, once or every N seconds."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=0, help="fold again every N seconds until stopped")

    def handle(self, *args, every: float = 0, **options) -> None:
        if every < 0:
            raise CommandError("--every must be zero or more seconds")
        while True:
            started = time.perf_counter()
            folded = aggregates_fold_all()
            self.stdout.write(
                json.dumps(
                    {
                        "folded": sum(folded.values()),
                        "projects": len(folded),
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )
            )
            self.stdout.flush()
            if not every:
                return
            time.sleep(max(0.0, every - (time.perf_counter() - started)))
