"""Import jobs: an uploaded file, imported by a Celery task with visible progress.

The upload form stores the file under settings.IMPORT_UPLOAD_DIR and calls
`import_job_create`; small files are run at once with `import_job_run`,
larger ones are queued with `import_job_enqueue` once the job row is
committed. The task (labeling.tasks) only calls `import_job_run`, which
writes progress to the row as it goes; the job page polls that row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from labeling.importing import ImportFailed, ImportSummary, pairs_import_validate, pairs_import_write
from labeling.models import ImportJob, Project
from lib.errors import NotFound
from preferences.readers import ReadError, source_from_path

logger = logging.getLogger(__name__)

# A running job whose heartbeat is older than this was lost with its worker;
# a redelivered task may take it over (the import is idempotent).
STALE_AFTER = timedelta(minutes=5)
_PROGRESS_INTERVAL_S = 0.5


def import_job_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    upload_path: Path,
    file_name: str,
    file_size: int,
    fmt: str,
    skip_invalid: bool,
) -> ImportJob:
    return ImportJob.objects.create(
        project=project,
        requested_by=user,
        upload_path=str(upload_path),
        file_name=file_name[:255],
        file_size=file_size,
        format=fmt,
        skip_invalid=skip_invalid,
    )


def import_job_enqueue(*, job: ImportJob) -> None:
    """Queue the job's task once the job row is committed (the worker must see it)."""
    transaction.on_commit(lambda: _send(job.pk))


def _send(job_id: int) -> None:
    from labeling.tasks import import_job_run_task

    try:
        result = import_job_run_task.apply_async(
            args=[job_id],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception:
        logger.exception("could not queue import job %s", job_id)
        import_job_fail(
            job_id=job_id,
            error="Could not queue the import: the task queue (Redis) is unreachable. "
            "Nothing was imported; upload the file again later.",
        )
        return
    ImportJob.objects.filter(pk=job_id).update(celery_task_id=result.id or "")


def import_job_fail(*, job_id: int, error: str) -> None:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, error=error, finished_at=timezone.now())
    _delete_upload(job.upload_path)


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Claim the job and import its file. Returns the finished job, or None if
    another run holds it or it is already done (a duplicate delivery)."""
    if not _claim(job_id):
        return None
    job = ImportJob.objects.select_related("project").get(pk=job_id)
    progress = _ProgressWriter(job_id)
    try:
        source = source_from_path(job.upload_path, max_chars=settings.IMPORT_MAX_FIELD_CHARS)
        validation = pairs_import_validate(
            source=source,
            fmt=job.format,
            skip_invalid=job.skip_invalid,
            max_chars=settings.IMPORT_MAX_FIELD_CHARS,
            on_progress=progress,
        )
        summary = pairs_import_write(
            project=job.project,
            source=source,
            validation=validation,
            max_chars=settings.IMPORT_MAX_FIELD_CHARS,
            on_progress=progress,
        )
    except (ImportFailed, ReadError) as exc:
        import_job_fail(job_id=job_id, error=_without_path(exc.message, job))
    except Exception:
        logger.exception("import job %s failed", job_id)
        import_job_fail(
            job_id=job_id,
            error="The import stopped on an internal error; see the server log. "
            "Batches already written are kept; upload the file again to finish.",
        )
        raise
    else:
        _finish(job_id, summary)
        _delete_upload(job.upload_path)
    return ImportJob.objects.get(pk=job_id)


def _claim(job_id: int) -> bool:
    """Queued -> running with a conditional UPDATE, so two deliveries never both run."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if claimed:
        return True
    # A delivery after its worker died: take over a job whose heartbeat stopped.
    return bool(
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER).update(
            heartbeat_at=now
        )
    )


def _finish(job_id: int, summary: ImportSummary) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.SUCCEEDED,
        phase="",
        finished_at=timezone.now(),
        rows_total=summary.rows,
        created=summary.created,
        duplicates=summary.duplicates,
        votes=summary.votes,
        skipped=summary.skipped,
        skipped_lines=summary.skipped_examples,
    )


class _ProgressWriter:
    """The importer's progress callback: writes to the job row at most twice a second."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self.last < _PROGRESS_INTERVAL_S:
            return
        self.last = now
        fields = {"phase": phase, "heartbeat_at": timezone.now()}
        if phase == "checking":
            fields["rows_checked"] = done
            if total is not None:
                fields["rows_total"] = total
        else:
            fields["rows_written"] = done
        ImportJob.objects.filter(pk=self.job_id).update(**fields)


def _without_path(message: str, job: ImportJob) -> str:
    """Messages name the stored temp file; the admin knows the file by its upload name."""
    return message.replace(job.upload_path, job.file_name)


def _delete_upload(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------- #
# Reads for the pages
# --------------------------------------------------------------------------- #
def import_job_get(*, job_id: int) -> ImportJob:
    job = ImportJob.objects.select_related("project", "requested_by").filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import.")
    return job


def import_jobs_recent(*, project: Project, limit: int = 10) -> list[ImportJob]:
    return list(ImportJob.objects.filter(project=project).select_related("requested_by")[:limit])
