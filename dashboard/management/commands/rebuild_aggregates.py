"""Recompute a project's dashboard aggregates from its votes.

For votes written before the aggregates existed, or after a manual fix of
the vote table. Imports, and the fold of live votes (`fold_aggregates`, the
beat task), keep the aggregates current on their own; this is the repair
tool. It refits the annotators' reliability too (dashboard.quality), which
the beat task otherwise does every few minutes.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from dashboard.aggregates import aggregates_rebuild
from dashboard.quality import reliability_refit
from labeling.models import Project


class Command(BaseCommand):
    help = "Recompute the dashboard aggregates (tallies, annotator stats) of one project, or all."

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--project", help="project slug")
        target.add_argument("--all", action="store_true", help="every project")

    def handle(self, *args, project=None, all=False, **options) -> None:
        projects = Project.objects.all() if all else Project.objects.filter(slug=project)
        if not all and not projects.exists():
            raise CommandError(f"no project with slug {project!r}")
        for p in projects:
            started = time.perf_counter()
            aggregates_rebuild(project=p)
            fit = reliability_refit(project=p)
            self.stdout.write(
                json.dumps(
                    {
                        "project": p.slug,
                        "seconds": round(time.perf_counter() - started, 2),
                        "reliability_fit_seconds": round(fit.seconds, 2),
                    }
                )
            )
