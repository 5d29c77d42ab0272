"""python manage.py import_pairs --project SLUG PATH [--format auto|trl|pairwise|pandalm] [--skip-invalid] [--gold]

--gold marks every row of a TRL file as a gold pair, its chosen response the
answer (docs/label_quality.md); a pairwise file marks gold pairs per row.

Validates the whole file first and writes nothing if a row is invalid
(unless --skip-invalid), then writes in batches. The last line on stdout is
the JSON summary {"created", "duplicates", "votes", "skipped"}; skipped rows
and progress go to stderr.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from labeling import services
from labeling.importing import (
    DEFAULT_BATCH_SIZE,
    GOLD_NEEDS_TRL,
    ImportFailed,
    pairs_import_validate,
    pairs_import_write,
)
from labeling.models import Project
from preferences.formats import FORMATS
from preferences.readers import FILE_TYPES, ReadError, source_from_hub, source_from_path


class Command(BaseCommand):
    help = "Import preference pairs from a JSONL(.gz), JSON, CSV or parquet file, a save_to_disk folder, or the Hub."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="File or save_to_disk folder (leave out with --hf).")
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--format", choices=FORMATS, default="auto", help="Row shape (default: detect).")
        parser.add_argument(
            "--file-type",
            choices=FILE_TYPES,
            default="auto",
            help="File type (default: from the name, else the first bytes).",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Write the valid rows and report each invalid one, instead of writing nothing.",
        )
        parser.add_argument(
            "--gold",
            action="store_true",
            help="Every row of this TRL file is a gold pair (a check with a known answer): chosen is the answer.",
        )
        parser.add_argument("--create-project", action="store_true", help="Create the project if it does not exist.")
        parser.add_argument("--hf", metavar="NAME", help="Stream a dataset from the Hugging Face Hub instead.")
        parser.add_argument("--split", help="Split of --hf (default train) or of a save_to_disk DatasetDict.")
        parser.add_argument(
            "--max-chars",
            type=int,
            default=settings.IMPORT_MAX_FIELD_CHARS,
            help="Longest text field accepted (default %(default)s).",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Rows per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars on stderr.")

    def handle(self, *args, **options):
        if bool(options["path"]) == bool(options["hf"]):
            raise CommandError("give either a PATH or --hf NAME")
        if options["batch_size"] < 1 or options["max_chars"] < 1:
            raise CommandError("--batch-size and --max-chars must be positive")
        slug = options["project"]
        project = Project.objects.filter(slug=slug).first()
        if project is None and not options["create_project"]:
            raise CommandError(f"no project {slug!r}; pass --create-project to create it")
        if project is None:
            _check_slug(slug)
        progress = _Bars(enabled=not options["no_progress"], stream=self.stderr._out)
        try:
            if options["hf"]:
                source = source_from_hub(options["hf"], split=options["split"] or "train")
            else:
                source = source_from_path(
                    options["path"],
                    file_type=options["file_type"],
                    split=options["split"],
                    max_chars=options["max_chars"],
                )
            validation = pairs_import_validate(
                source=source,
                fmt=options["format"],
                skip_invalid=options["skip_invalid"],
                max_chars=options["max_chars"],
                on_progress=progress,
                on_skip=self._report_skip,
            )
            if options["gold"] and validation.fmt != "trl":
                raise ImportFailed(GOLD_NEEDS_TRL)
            if project is None:  # only now: a file that fails the check creates nothing
                with transaction.atomic():
                    project = services.project_create(slug=slug)
            summary = pairs_import_write(
                project=project,
                source=source,
                validation=validation,
                max_chars=options["max_chars"],
                batch_size=options["batch_size"],
                on_progress=progress,
                gold=options["gold"],
            )
        except (ImportFailed, ReadError) as exc:
            hint = " Rerun with --skip-invalid to import them." if getattr(exc, "invalid_rows", None) else ""
            raise CommandError(exc.message + hint) from None
        finally:
            progress.close()
        self.stderr.write(f"{summary.rows} rows read as {summary.fmt} into project {project.slug}")
        self.stdout.write(json.dumps(summary.as_dict()))

    def _report_skip(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"skipped {message}", file=self.stderr._out)  # above the bar, not through it


def _check_slug(slug: str) -> None:
    try:
        Project(slug=slug, name=slug).full_clean(validate_unique=False)
    except ValidationError as exc:
        raise CommandError(f"cannot create project {slug!r}: {'; '.join(exc.messages)}") from None


class _Bars:
    """tqdm bars on stderr, one per phase; the importer's progress callback."""

    def __init__(self, *, enabled: bool, stream):
        self.enabled = enabled
        self.stream = stream
        self.bar = None
        self.phase = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                desc=phase, unit=" rows", total=total, file=self.stream, dynamic_ncols=True, mininterval=0.5
            )
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
