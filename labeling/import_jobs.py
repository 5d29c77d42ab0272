"""Import jobs: an uploaded file, imported by a Celery task with visible progress.

The upload form stores the file under settings.IMPORT_UPLOAD_DIR and calls
`import_job_create`; small plain files are run at once with
`import_job_run`, larger or gzipped ones are queued with
`import_job_enqueue` once the job row is committed. The task
(labeling.tasks) only calls `import_job_run`, which writes progress to the
row as it goes; the job page polls that row.

Each claim is the job's next attempt, and every write of a running job is
conditional on (running, attempt), so a worker that lost its job writes
nothing more. A worker killed mid-import (out of memory, say) leaves a
running job whose heartbeat stops: `import_jobs_reconcile` (beat) queues it
again while it has attempts left, or fails it and deletes its upload. The
import is idempotent, so a second attempt just finishes the first's work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from labeling.importing import ImportFailed, ImportSummary, pairs_import_validate, pairs_import_write
from labeling.models import ImportJob, Project
from lib.errors import Conflict, NotFound
from preferences.readers import ReadError, is_gzip, source_from_path

logger = logging.getLogger(__name__)

Status = ImportJob.Status
_PROGRESS_INTERVAL_S = 0.5
# A queued job nobody took for this long, with nothing ahead of it, hints at a missing worker.
WAIT_HINT_SECONDS = 30


def import_job_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    upload_path: Path,
    file_name: str,
    file_size: int,
    fmt: str,
    skip_invalid: bool,
    gold: bool = False,
) -> ImportJob:
    """A queued import of an uploaded file. With `gold` every row (of a TRL file) is a gold pair."""
    return ImportJob.objects.create(
        project=project,
        requested_by=user,
        upload_path=str(upload_path),
        file_name=file_name[:255],
        file_size=file_size,
        format=fmt,
        skip_invalid=skip_invalid,
        gold=gold,
    )


def import_job_runs_inline(*, job: ImportJob) -> bool:
    """Whether the upload is small enough to import within the request: plain files only,
    since a small gzip can inflate to gigabytes."""
    return job.file_size <= settings.IMPORT_INLINE_MAX_BYTES and not is_gzip(Path(job.upload_path))


def import_job_enqueue(*, job: ImportJob) -> None:
    """Queue the job's task once the job row is committed (the worker must see it)."""
    transaction.on_commit(lambda: _send(job.pk))


def _send(job_id: int) -> bool:
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
        return False
    ImportJob.objects.filter(pk=job_id).update(celery_task_id=result.id or "", enqueued_at=timezone.now())
    return True


def import_job_fail(*, job_id: int, error: str, attempt: int | None = None, keep_upload: bool = False) -> bool:
    """Fail the job (only attempt `attempt`'s, when given) and delete its upload unless kept for a retry."""
    jobs = ImportJob.objects.filter(pk=job_id).exclude(status__in=(Status.SUCCEEDED, Status.FAILED))
    if attempt is not None:
        jobs = jobs.filter(status=Status.RUNNING, attempt=attempt)
    job = jobs.first()
    if job is None or not jobs.update(status=Status.FAILED, error=error, finished_at=timezone.now()):
        return False
    if not keep_upload:
        _upload_release(job)
    return True


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Claim the job and import its file. Returns the finished job, or None if
    it is not queued (another delivery has it, or it is done)."""
    attempt = _claim(job_id)
    if attempt is None:
        return None
    job = ImportJob.objects.select_related("project").get(pk=job_id)
    progress = _ProgressWriter(job_id, attempt)
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
            gold=job.gold,
        )
    except (ImportFailed, ReadError) as exc:
        invalid = getattr(exc, "invalid_rows", None)
        if invalid:  # nothing written: keep the upload for "retry, skipping the invalid rows"
            ImportJob.objects.filter(pk=job_id, attempt=attempt).update(rows_invalid=invalid, rows_total=exc.rows)
        import_job_fail(
            job_id=job_id, error=_without_path(exc.message, job), attempt=attempt, keep_upload=bool(invalid)
        )
    except Exception:
        logger.exception("import job %s failed", job_id)
        import_job_fail(
            job_id=job_id,
            attempt=attempt,
            error="The import stopped on an internal error; see the server log. "
            "Batches already written are kept; upload the file again to finish.",
        )
        raise
    else:
        if _finish(job_id, attempt, summary):
            _upload_release(job)
    return ImportJob.objects.get(pk=job_id)


def _claim(job_id: int) -> int | None:
    """Queued -> running as the next attempt, with a conditional UPDATE, so two deliveries never both run."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, attempt=F("attempt") + 1, phase=""
    )
    if not claimed:
        return None
    return ImportJob.objects.filter(pk=job_id).values_list("attempt", flat=True).first()


def _finish(job_id: int, attempt: int, summary: ImportSummary) -> bool:
    return bool(
        ImportJob.objects.filter(pk=job_id, status=Status.RUNNING, attempt=attempt).update(
            status=Status.SUCCEEDED,
            phase="",
            finished_at=timezone.now(),
            rows_total=summary.rows,
            created=summary.created,
            duplicates=summary.duplicates,
            votes=summary.votes,
            skipped=summary.skipped,
            skipped_lines=summary.skipped_examples,
        )
    )


def import_job_retry_skipping_invalid(*, job: ImportJob, user: AbstractBaseUser | None) -> ImportJob:
    """A new job for the same upload, skipping the invalid rows the failed check counted."""
    if job.status != Status.FAILED or not job.rows_invalid:
        raise Conflict("Only an import refused for invalid rows can be retried skipping them.")
    path = Path(job.upload_path) if job.upload_path else None
    if path is None or not path.exists():
        raise Conflict("The uploaded file is no longer kept; upload it again.")
    with transaction.atomic():
        # The upload moves to the new job: only one of them may delete it.
        if not ImportJob.objects.filter(pk=job.pk, upload_path=str(path)).update(upload_path=""):
            raise Conflict("This import was already retried.")
        retry = import_job_create(
            project=job.project,
            user=user,
            upload_path=path,
            file_name=job.file_name,
            file_size=job.file_size,
            fmt=job.format,
            skip_invalid=True,
            gold=job.gold,
        )
    return retry


class _ProgressWriter:
    """The importer's progress callback: writes to the job row at most twice a second.

    The write is the job's heartbeat too, and only lands while this attempt owns the job.
    """

    def __init__(self, job_id: int, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
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
        ImportJob.objects.filter(pk=self.job_id, status=Status.RUNNING, attempt=self.attempt).update(**fields)


def _without_path(message: str, job: ImportJob) -> str:
    """Messages name the stored temp file; the admin knows the file by its upload name."""
    return message.replace(job.upload_path, job.file_name)


def _upload_release(job: ImportJob) -> None:
    """Delete the job's upload, unless it moved to a retry meanwhile."""
    if job.upload_path and ImportJob.objects.filter(pk=job.pk, upload_path=job.upload_path).exists():
        _delete_upload(job.upload_path)


def _delete_upload(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------- #
# Reconciler: lost workers, unsent messages, uploads nobody needs
# --------------------------------------------------------------------------- #
@dataclass
class ImportReconcileReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    uploads_deleted: list[str] = field(default_factory=list)


def import_jobs_reconcile(*, now: datetime | None = None) -> ImportReconcileReport:
    """Fix import jobs no worker is looking after, and delete uploads nobody needs (the beat task).

    - A running job silent for IMPORT_HEARTBEAT_TIMEOUT_SECONDS lost its
      worker: queued again while it has attempts left (IMPORT_MAX_ATTEMPTS),
      else failed, its upload deleted.
    - A queued job whose message never left, or left long ago
      (IMPORT_QUEUED_RESEND_SECONDS), is sent again; claiming is conditional,
      so a duplicate does nothing.
    - A failed job's upload kept for a retry goes after IMPORT_RETRY_KEEP_HOURS;
      a file in IMPORT_UPLOAD_DIR that no job names goes after an hour.
    """
    now = now or timezone.now()
    report = ImportReconcileReport()
    deadline = now - timedelta(seconds=settings.IMPORT_HEARTBEAT_TIMEOUT_SECONDS)
    stale = ImportJob.objects.filter(status=Status.RUNNING, heartbeat_at__lt=deadline)
    for job in stale.only("id", "attempt", "heartbeat_at", "upload_path"):
        mine = ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING, attempt=job.attempt)
        seen = f"no progress since {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        if job.attempt < settings.IMPORT_MAX_ATTEMPTS:
            if mine.update(
                status=Status.QUEUED,
                phase="requeued",
                error=f"Worker lost on attempt {job.attempt} ({seen}); retrying.",
            ):
                report.requeued.append(job.pk)
        elif mine.update(
            status=Status.FAILED,
            finished_at=now,
            error=f"The import's worker was lost {job.attempt} times ({seen}), perhaps out of memory; "
            "nothing more is tried. Batches already written are kept. Split the file, or import it with "
            "`manage.py import_pairs` on the server.",
        ):
            report.failed.append(job.pk)
            _delete_upload(job.upload_path)
            report.uploads_deleted.append(job.upload_path)

    resend_before = now - timedelta(seconds=settings.IMPORT_QUEUED_RESEND_SECONDS)
    unsent = ImportJob.objects.filter(status=Status.QUEUED).filter(
        Q(enqueued_at__isnull=True, created_at__lt=now - timedelta(seconds=15))
        | Q(enqueued_at__lt=resend_before)
        | Q(pk__in=report.requeued)
    )
    for job_id in unsent.values_list("pk", flat=True):
        if _send(job_id):
            report.resent.append(job_id)

    keep_until = now - timedelta(hours=settings.IMPORT_RETRY_KEEP_HOURS)
    for job in ImportJob.objects.filter(status=Status.FAILED, finished_at__lt=keep_until).exclude(upload_path=""):
        if ImportJob.objects.filter(pk=job.pk, upload_path=job.upload_path).update(upload_path=""):
            _delete_upload(job.upload_path)
            report.uploads_deleted.append(job.upload_path)
    report.uploads_deleted += _orphan_uploads_delete(older_than=now - timedelta(hours=1))
    if report.requeued or report.failed or report.resent:
        logger.warning("Reconciled import jobs: %s", report)
    return report


def _orphan_uploads_delete(*, older_than: datetime) -> list[str]:
    """Files in the upload folder that no job names (a request that died between storing and recording)."""
    root = Path(settings.IMPORT_UPLOAD_DIR)
    if not root.is_dir():
        return []
    old = [str(p) for p in root.iterdir() if p.is_file() and p.stat().st_mtime < older_than.timestamp()]
    if not old:
        return []
    # Ask only about these files: the jobs table keeps every path it ever held.
    named = set(ImportJob.objects.filter(upload_path__in=old).values_list("upload_path", flat=True))
    deleted = [path for path in old if path not in named]
    for path in deleted:
        _delete_upload(path)
    return deleted


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


def import_job_wait_reason(*, job: ImportJob, now: datetime | None = None) -> str:
    """What a queued job is waiting for, in words for its page ("" unless it is queued)."""
    if job.status != Status.QUEUED:
        return ""
    if job.enqueued_at is None:
        return "Not sent to the task queue yet; it is sent within seconds, or again by the reconciler."
    busy = list(ImportJob.objects.filter(status=Status.RUNNING).exclude(pk=job.pk).select_related("project")[:3])
    ahead = ImportJob.objects.filter(status=Status.QUEUED, created_at__lt=job.created_at).exclude(pk=job.pk).count()
    more = f"; {ahead} more queued before it" if ahead else ""
    if busy:
        names = ", ".join(f"import {j.pk} into {j.project.slug} ({j.percent}%)" for j in busy)
        verb = "is" if len(busy) == 1 else "are"
        return f"Waiting for a worker on the `default` queue: {names} {verb} running{more}."
    if ahead:
        return (
            f"Waiting for a worker on the `default` queue: {ahead} import{'s' if ahead > 1 else ''} queued before it."
        )
    waited = ((now or timezone.now()) - job.enqueued_at).total_seconds()
    if waited > WAIT_HINT_SECONDS:
        return (
            f"No worker has taken it in {waited:.0f} s, and none is busy with another import: is a worker serving "
            "the `default` queue running? (`make run` starts one; docker-compose runs `worker-default`.)"
        )
    return "Waiting for a worker on the `default` queue."
