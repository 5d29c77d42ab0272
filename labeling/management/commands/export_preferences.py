"""python manage.py export_preferences --project SLUG --format trl|votes|pairwise -o PATH [--label-model NAME]

PATH ends in .jsonl, .jsonl.gz, .csv or .parquet, or is a folder name
without a suffix, written with datasets' save_to_disk. The last line on
stdout is the JSON summary {"rows", "path"}.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.exporting import EXPORT_FORMATS, SPLITS, ExportFailed, export_to_path
from labeling.models import Project
from preferences.label_models import LABEL_MODELS


class Command(BaseCommand):
    help = "Export a project's preferences for TRL and Hugging Face datasets."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--format", choices=EXPORT_FORMATS, required=True)
        parser.add_argument("--split", choices=SPLITS, default="all")
        parser.add_argument("--min-votes", type=int, default=0, help="Only pairs with at least N votes.")
        parser.add_argument(
            "--label-model",
            choices=LABEL_MODELS,
            default=None,
            help="Label pairs with this model and add a p_chosen column (trl: P(chosen better); "
            "pairwise: P(response_a better)). See docs/label_quality.md.",
        )
        parser.add_argument("-o", "--output", required=True, metavar="PATH")
        parser.add_argument("--force", action="store_true", help="Replace PATH if it exists.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if options["no_progress"]:
                return
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(
                    desc="exporting",
                    unit=" rows",
                    total=total,
                    file=self.stderr._out,
                    dynamic_ncols=True,
                    mininterval=0.5,
                )
            bar.update(done - bar.n)

        try:
            summary = export_to_path(
                project=project,
                fmt=options["format"],
                path=options["output"],
                split=options["split"],
                min_votes=options["min_votes"],
                overwrite=options["force"],
                on_progress=progress,
                label_model=options["label_model"],
            )
        except ExportFailed as exc:
            raise CommandError(exc.message) from None
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(json.dumps(summary.as_dict()))
