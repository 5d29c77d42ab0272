"""An upload imported by a real `celery -A config worker` process over the real Redis."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import ImportJob, Pair, Vote
from tests.rewardmodel.workers import start_worker, wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_large_upload_runs_on_a_real_worker_and_reports_progress(client, admin_user, project, settings, tmp_path):
    # given a worker on the default queue, sharing this test's database file and Redis db
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.IMPORT_INLINE_MAX_BYTES = 0  # every upload goes to Celery
    worker = start_worker(log_dir=tmp_path / "logs", queues="default")
    rows = "".join(
        json.dumps(
            {
                "prompt": f"Q{i}",
                "response_a": f"A{i}",
                "response_b": f"B{i}",
                "votes": [{"annotator": "w-1", "choice": "a"}, {"annotator": "w-2", "choice": "tie"}],
            }
        )
        + "\n"
        for i in range(20_000)
    ).encode()
    client.force_login(admin_user)
    try:
        # when the admin uploads and watches the job page
        response = client.post(
            reverse("project-import", args=[project.slug]),
            {"file": SimpleUploadedFile("big.jsonl", rows), "format": "pairwise"},
        )
        job = ImportJob.objects.get()
        seen = set()

        def finished():
            card = client.get(reverse("import-job-progress", args=[job.pk])).content.decode()
            seen.add(card.split('data-status="')[1].split('"')[0])
            return ImportJob.objects.filter(pk=job.pk).exclude(status__in=ImportJob.ACTIVE_STATUSES).first()

        done = wait_for(finished, timeout=120, interval=0.2, what="the import job to finish")
    finally:
        worker.kill()
    # then the worker imported everything and the page showed the job until it ended
    assert response.status_code == 302
    assert done.status == ImportJob.Status.SUCCEEDED, f"{done.error}\n{worker.log()[-3000:]}"
    assert (done.created, done.votes, done.rows_written, done.rows_total) == (20_000, 40_000, 20_000, 20_000)
    assert done.celery_task_id and done.started_at <= done.finished_at
    assert "succeeded" in seen
    assert Pair.objects.filter(project=project).count() == 20_000
    assert Vote.objects.filter(project=project, choice="tie").count() == 20_000
    assert "labeling.import_job_run" in worker.log()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_is_killed_is_requeued_and_finished_by_another(admin_user, project, settings, tmp_path):
    # given a large import running on a worker
    from labeling import import_jobs

    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.IMPORT_UPLOAD_DIR.mkdir()
    path = settings.IMPORT_UPLOAD_DIR / "big.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"Q{i}", "response_a": f"A{i}", "response_b": f"B{i}", "votes": []}) + "\n"
            for i in range(60_000)
        )
    )
    job = import_jobs.import_job_create(
        project=project,
        user=admin_user,
        upload_path=path,
        file_name="big.jsonl",
        file_size=path.stat().st_size,
        fmt="pairwise",
        skip_invalid=False,
    )
    first = start_worker(log_dir=tmp_path / "logs", queues="default")
    import_jobs.import_job_enqueue(job=job)  # no transaction here: sent at once
    wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, rows_written__gt=0).exists(),
        timeout=60,
        interval=0.05,
        what="the import to be writing",
    )
    # when its worker is killed (as by the out-of-memory killer) and its heartbeat goes stale
    first.kill()
    settings.IMPORT_HEARTBEAT_TIMEOUT_SECONDS = 1
    time.sleep(1.5)
    second = start_worker(log_dir=tmp_path / "logs", queues="default", flush=False)
    try:
        report = import_jobs.import_jobs_reconcile()
        # then the reconciler queues it again, and the other worker finishes it as attempt 2
        assert report.requeued == [job.pk] and report.resent == [job.pk]
        done = wait_for(
            lambda: ImportJob.objects.filter(pk=job.pk).exclude(status__in=ImportJob.ACTIVE_STATUSES).first(),
            timeout=180,
            what="the second attempt to finish",
        )
    finally:
        second.kill()
    assert done.status == ImportJob.Status.SUCCEEDED and done.attempt == 2, done.error
    assert Pair.objects.filter(project=project).count() == 60_000  # the first attempt's batches counted once
    assert not path.exists()
