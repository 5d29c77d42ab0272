"""Import jobs over months: lost workers, lost messages, gzip bombs, refused files, retries."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from labeling import import_jobs
from labeling.models import ImportJob, Pair
from tests.labeling.test_import_upload import jsonl_bytes, post_file, stored_uploads

Status = ImportJob.Status


@pytest.fixture
def uploads(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.IMPORT_UPLOAD_DIR.mkdir()
    return settings.IMPORT_UPLOAD_DIR


@pytest.fixture
def broker():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()


def _job(project, uploads, *, status=Status.QUEUED, attempt=0, heartbeat_seconds_ago=None, rows=3, name="j.jsonl"):
    path = uploads / name
    path.write_bytes(jsonl_bytes(rows))
    job = import_jobs.import_job_create(
        project=project,
        user=None,
        upload_path=path,
        file_name=name,
        file_size=path.stat().st_size,
        fmt="auto",
        skip_invalid=False,
    )
    beat = timezone.now() - timedelta(seconds=heartbeat_seconds_ago) if heartbeat_seconds_ago is not None else None
    ImportJob.objects.filter(pk=job.pk).update(status=status, attempt=attempt, heartbeat_at=beat)
    return ImportJob.objects.get(pk=job.pk)


def test_a_job_whose_worker_died_is_requeued_then_failed_at_the_cap(project, uploads, settings, broker):
    # given two running jobs whose heartbeat stopped 10 minutes ago: one on its first attempt, one on its last
    settings.IMPORT_HEARTBEAT_TIMEOUT_SECONDS, settings.IMPORT_MAX_ATTEMPTS = 300, 2
    first = _job(project, uploads, status=Status.RUNNING, attempt=1, heartbeat_seconds_ago=600, name="a.jsonl")
    last = _job(project, uploads, status=Status.RUNNING, attempt=2, heartbeat_seconds_ago=600, name="b.jsonl")
    fresh = _job(project, uploads, status=Status.RUNNING, attempt=1, heartbeat_seconds_ago=10, name="c.jsonl")
    # when the reconciler runs
    report = import_jobs.import_jobs_reconcile()
    # then the first goes back to the queue and is sent again; its upload stays for attempt 2
    assert report.requeued == [first.pk] and first.pk in report.resent
    first.refresh_from_db()
    assert first.status == Status.QUEUED and "Worker lost on attempt 1" in first.error
    assert broker.llen("default") == 1 and os.path.exists(first.upload_path)
    # and the last attempt's job fails, saying why, and its upload is deleted
    last.refresh_from_db()
    assert report.failed == [last.pk] and last.status == Status.FAILED
    assert "lost 2 times" in last.error and not os.path.exists(last.upload_path)
    # and a job that is making progress is left alone
    fresh.refresh_from_db()
    assert fresh.status == Status.RUNNING
    # and the requeued job runs as attempt 2 and finishes
    assert import_jobs.import_job_run(job_id=first.pk).status == Status.SUCCEEDED
    assert ImportJob.objects.get(pk=first.pk).attempt == 2


def test_the_lost_attempt_writes_nothing_once_requeued(project, uploads, settings):
    # given an attempt that the reconciler took away
    job = _job(project, uploads, status=Status.RUNNING, attempt=1, heartbeat_seconds_ago=600)
    import_jobs.import_jobs_reconcile()
    # when that worker wakes up and reports progress and its end
    import_jobs._ProgressWriter(job.pk, attempt=1)("writing", 3, 3)
    finished = import_jobs._finish(job.pk, 1, import_jobs.ImportSummary(created=3))
    # then nothing is written: the job is queued for its next attempt
    job.refresh_from_db()
    assert not finished and job.status == Status.QUEUED and job.rows_written == 0


def test_a_queued_job_whose_message_was_lost_is_sent_again(project, uploads, settings, broker):
    settings.IMPORT_QUEUED_RESEND_SECONDS = 600
    never_sent = _job(project, uploads, name="a.jsonl")
    ImportJob.objects.filter(pk=never_sent.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    long_ago = _job(project, uploads, name="b.jsonl")
    ImportJob.objects.filter(pk=long_ago.pk).update(enqueued_at=timezone.now() - timedelta(minutes=11))
    just_sent = _job(project, uploads, name="c.jsonl")
    ImportJob.objects.filter(pk=just_sent.pk).update(enqueued_at=timezone.now())
    report = import_jobs.import_jobs_reconcile()
    assert sorted(report.resent) == sorted([never_sent.pk, long_ago.pk])
    assert broker.llen("default") == 2


def test_uploads_nobody_needs_are_deleted(project, uploads, settings):
    # given a failed job whose upload was kept for a retry 2 days ago, and stray files
    settings.IMPORT_RETRY_KEEP_HOURS = 24
    kept = _job(project, uploads, status=Status.FAILED, name="kept.jsonl")
    ImportJob.objects.filter(pk=kept.pk).update(finished_at=timezone.now() - timedelta(days=2), rows_invalid=1)
    stray_old, stray_new = uploads / "stray-old.jsonl", uploads / "stray-new.jsonl"
    stray_old.write_bytes(b"{}")
    stray_new.write_bytes(b"{}")
    two_hours_ago = time.time() - 7200
    os.utime(stray_old, (two_hours_ago, two_hours_ago))
    # when the reconciler runs
    import_jobs.import_jobs_reconcile()
    # then the expired upload and the old stray file are gone; a file a request may still be writing stays
    assert sorted(stored_uploads(uploads)) == ["stray-new.jsonl"]
    assert ImportJob.objects.get(pk=kept.pk).upload_path == ""


def test_a_small_gzip_upload_is_never_inflated_in_the_request(client, admin_user, project, uploads, broker):
    # given a gzipped file far under the inline size
    body = gzip.compress(jsonl_bytes(20))
    client.force_login(admin_user)
    # when uploaded
    with pytest.MonkeyPatch.context() as patch:
        inflated = []
        patch.setattr(import_jobs, "import_job_run", lambda **kw: inflated.append(kw))
        response = post_file(client, project, body, name="pairs.jsonl.gz")
    # then the request queued it for a worker instead of importing it
    job = ImportJob.objects.get()
    assert response.status_code == 302 and inflated == []
    assert job.status == Status.QUEUED and job.file_size == len(body)
    assert Pair.objects.count() == 0


def test_a_file_refused_for_invalid_rows_can_be_retried_skipping_them(client, admin_user, project, uploads):
    # given an upload whose rows 2 and 4 are invalid
    rows = [json.loads(line) for line in jsonl_bytes(5).splitlines()]
    rows[1]["response_b"] = rows[1]["response_a"]
    rows[3]["prompt"] = ""
    client.force_login(admin_user)
    post_file(client, project, "".join(json.dumps(r) + "\n" for r in rows).encode())
    # then the job failed, counting them, nothing was written, and its page offers the retry
    job = ImportJob.objects.get()
    assert job.status == Status.FAILED and job.rows_invalid == 2 and Pair.objects.count() == 0
    page = client.get(reverse("import-job", args=[job.pk])).content.decode()
    assert "Import again, skipping the 2 invalid rows" in page
    # when the admin presses it
    response = client.post(reverse("import-job-retry", args=[job.pk]))
    # then a new job imports the 3 valid rows, skipping the 2, and the upload is gone after
    retry = ImportJob.objects.exclude(pk=job.pk).get()
    assert response.status_code == 302 and response["Location"] == reverse("import-job", args=[retry.pk])
    assert retry.status == Status.SUCCEEDED and (retry.created, retry.skipped) == (3, 2)
    assert stored_uploads(uploads) == []
    # and the old job cannot be retried twice
    assert client.post(reverse("import-job-retry", args=[job.pk])).status_code == 409


def test_a_queued_job_page_says_what_it_waits_for(client, admin_user, project, uploads):
    client.force_login(admin_user)
    busy = _job(project, uploads, status=Status.RUNNING, attempt=1, heartbeat_seconds_ago=1, name="a.jsonl")
    waiting = _job(project, uploads, name="b.jsonl")
    ImportJob.objects.filter(pk=waiting.pk).update(enqueued_at=timezone.now())
    card = client.get(reverse("import-job-progress", args=[waiting.pk])).content.decode()
    assert f"Waiting for a worker on the `default` queue: import {busy.pk} into {project.slug}" in card
    # with nothing ahead of it for a while, it points at the missing worker
    ImportJob.objects.filter(pk=busy.pk).update(status=Status.SUCCEEDED)
    ImportJob.objects.filter(pk=waiting.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))
    card = client.get(reverse("import-job-progress", args=[waiting.pk])).content.decode()
    assert "No worker has taken it in 1" in card and "worker-default" in card
