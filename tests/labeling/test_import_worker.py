"""An upload imported by a real `celery -A config worker` process over the real Redis."""

from __future__ import annotations

import json

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
