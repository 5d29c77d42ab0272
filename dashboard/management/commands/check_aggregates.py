"""Compare the dashboard aggregates with a rebuild from the vote table; exit 1 when they differ.

Read-only: the rebuild runs in a transaction that is rolled back. Prints one
JSON line per project: {"project", "consistent", "differs"} where `differs`
lists the tables whose rows disagree. `rebuild_aggregates` repairs them.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from dashboard.aggregates import aggregates_check
from labeling.models import Project


class Command(BaseCommand):
    help = "Check that the dashboard aggregates equal a rebuild from the votes (one project, or all)."

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--project", help="project slug")
        target.add_argument("--all", action="store_true", help="every project")
        parser.add_argument("--verbose-diff", action="store_true", help="print the differing rows too")

    def handle(self, *args, project=None, all=False, verbose_diff=False, **options) -> None:
        projects = Project.objects.order_by("pk") if all else Project.objects.filter(slug=project)
        if not all and not projects.exists():
            raise CommandError(f"no project with slug {project!r}")
        bad = []
        for p in projects:
            differences = aggregates_check(project=p)
            line = {"project": p.slug, "consistent": not differences, "differs": sorted(differences)}
            if verbose_diff and differences:
                line["rows"] = {
                    table: {k: [list(map(str, row)) for row in v] for k, v in diff.items()}
                    for table, diff in differences.items()
                }
            self.stdout.write(json.dumps(line))
            if differences:
                bad.append(p.slug)
        if bad:
            raise CommandError(f"aggregates differ from a rebuild in: {', '.join(bad)} (run rebuild_aggregates)")
