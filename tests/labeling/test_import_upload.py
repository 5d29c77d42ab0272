"""The admin upload form: permissions, the size cap (413), CSRF, inline and queued imports."""

from __future__ import annotations

import json
import os

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import ImportJob, Pair
from labeling.tasks import import_job_run_task


def jsonl_bytes(n: int, start: int = 0) -> bytes:
    return "".join(
        json.dumps(
            {
                "prompt": f"Q{i}",
                "response_a": f"A{i}",
                "response_b": f"B{i}",
                "votes": [{"annotator": "up-1", "choice": "a"}],
            }
        )
        + "\n"
        for i in range(start, start + n)
    ).encode()


@pytest.fixture
def uploads(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    return settings.IMPORT_UPLOAD_DIR


def stored_uploads(directory) -> list[str]:
    return os.listdir(directory) if directory.exists() else []


def post_file(client, project, content: bytes, name="pairs.jsonl", **headers):
    return client.post(
        reverse("project-import", args=[project.slug]),
        {"file": SimpleUploadedFile(name, content), "format": "auto"},
        **headers,
    )


@pytest.mark.parametrize("who", ["annotator_user", "reviewer_user", "no_role_user"])
def test_only_admins_reach_import_and_export(request, client, project, uploads, who):
    # given a logged-in user without manage_project
    client.force_login(request.getfixturevalue(who))
    # when
    responses = [
        client.get(reverse("project-import", args=[project.slug])),
        post_file(client, project, jsonl_bytes(2)),
        client.get(reverse("project-export", args=[project.slug])),
        client.get(reverse("project-export-download", args=[project.slug]), {"format": "pairwise"}),
    ]
    # then
    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert Pair.objects.count() == 0 and stored_uploads(uploads) == []


def test_anonymous_is_sent_to_login(client, project):
    # when
    response = client.get(reverse("project-import", args=[project.slug]))
    # then
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_small_upload_is_imported_inline_and_shown_on_the_job_page(client, admin_user, project, uploads):
    # given
    client.force_login(admin_user)
    # when
    response = post_file(client, project, jsonl_bytes(5))
    # then
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("import-job", args=[job.pk])
    assert job.status == ImportJob.Status.SUCCEEDED and (job.created, job.votes) == (5, 5)
    assert Pair.objects.filter(project=project).count() == 5
    assert stored_uploads(uploads) == []  # the upload is deleted once imported
    page = client.get(response["Location"]).content.decode()
    assert 'data-count="created">5<' in page and "hx-trigger" not in page


def test_invalid_file_fails_the_job_with_the_line_and_writes_nothing(client, admin_user, project, uploads):
    # given a file whose second row has identical responses
    client.force_login(admin_user)
    bad = jsonl_bytes(1) + b'{"prompt": "p", "response_a": "same", "response_b": "same"}\n'
    # when
    post_file(client, project, bad)
    # then
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert job.error.startswith("line 2: response_b is identical")
    assert job.upload_path not in job.error  # the server's temp path is not shown
    assert Pair.objects.count() == 0


def test_declared_body_over_the_cap_is_413_before_parsing(client, admin_user, project, uploads, settings):
    # given a cap far below the body
    settings.IMPORT_UPLOAD_MAX_BYTES = 1000
    client.force_login(admin_user)
    # when
    response = post_file(client, project, b"x" * 200_000)
    # then
    assert response.status_code == 413
    assert "larger than the upload limit" in response.content.decode()
    assert stored_uploads(uploads) == [] and ImportJob.objects.count() == 0


def test_file_over_the_cap_inside_the_slack_is_413_and_leaves_no_file(client, admin_user, project, uploads, settings):
    # given a file just over the cap, its request still under cap + multipart slack
    settings.IMPORT_UPLOAD_MAX_BYTES = 1000
    client.force_login(admin_user)
    # when
    response = post_file(client, project, b"x" * 5000, HTTP_ACCEPT="application/json")
    # then the upload handler stopped it, and JSON clients get JSON
    assert response.status_code == 413
    assert "upload limit" in response.json()["detail"]
    assert stored_uploads(uploads) == [] and ImportJob.objects.count() == 0


def test_csrf_is_enforced_on_the_upload(admin_user, project, uploads):
    # given a client that checks CSRF like a browser
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse("project-import", args=[project.slug])
    # when posting without a token, then with the form's token
    refused = client.post(url, {"file": SimpleUploadedFile("p.jsonl", jsonl_bytes(1))})
    refused_left = stored_uploads(uploads)
    client.get(url)
    token = client.cookies["csrftoken"].value
    accepted = client.post(url, {"file": SimpleUploadedFile("p.jsonl", jsonl_bytes(1)), "csrfmiddlewaretoken": token})
    # then
    assert refused.status_code == 403
    assert refused_left == []  # the refused upload left no file behind
    assert accepted.status_code == 302
    assert Pair.objects.count() == 1


def test_unsupported_file_name_and_missing_file_are_400(client, admin_user, project, uploads):
    # given
    client.force_login(admin_user)
    # when
    wrong_type = post_file(client, project, b"hello", name="notes.txt")
    no_file = client.post(reverse("project-import", args=[project.slug]), {"format": "auto"})
    # then
    assert wrong_type.status_code == 400 and "Upload a file ending in one of" in wrong_type.content.decode()
    assert no_file.status_code == 400
    assert stored_uploads(uploads) == []


@pytest.fixture
def own_redis_db():
    """Flush only this run's Redis database (REDIS_URL), before and after."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()


def test_large_upload_is_queued_after_commit_then_run_by_the_task(
    client, admin_user, project, uploads, settings, django_capture_on_commit_callbacks, own_redis_db
):
    # given uploads over the inline threshold go to Celery
    settings.IMPORT_INLINE_MAX_BYTES = 100
    client.force_login(admin_user)
    # when the form is posted, the task is published to Redis only on commit
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_file(client, project, jsonl_bytes(30))
    job = ImportJob.objects.get()
    # then the job waits, with its page polling for progress
    assert len(callbacks) == 1
    assert job.status == ImportJob.Status.QUEUED and job.celery_task_id
    assert own_redis_db.llen("default") == 1  # the message is on the real broker
    progress = client.get(reverse("import-job-progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in progress and "Waiting for a worker on the `default` queue." in progress
    # when the task runs (in-process here; tests/labeling/test_import_worker.py uses a real worker)
    import_job_run_task.apply(args=[job.pk])
    # then
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.created == 30 and job.rows_written == 30
    assert stored_uploads(uploads) == []
    done = client.get(reverse("import-job-progress", args=[job.pk])).content.decode()
    assert "hx-trigger" not in done and 'data-count="created">30<' in done
    assert response.status_code == 302


def test_duplicate_delivery_does_not_run_the_job_twice(admin_user, project, uploads, tmp_path):
    # given a job that already ran
    from labeling import import_jobs

    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl_bytes(3))
    job = import_jobs.import_job_create(
        project=project,
        user=admin_user,
        upload_path=path,
        file_name="p.jsonl",
        file_size=path.stat().st_size,
        fmt="auto",
        skip_invalid=False,
    )
    assert import_jobs.import_job_run(job_id=job.pk).status == ImportJob.Status.SUCCEEDED
    # when the task is delivered again
    again = import_jobs.import_job_run(job_id=job.pk)
    # then it does nothing
    assert again is None
    assert ImportJob.objects.get(pk=job.pk).created == 3


@pytest.fixture
def broker_down():
    """Point Celery at a port nothing listens on, as when Redis is down."""
    from config.celery import app

    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    app.amqp._producer_pool = None
    yield
    app.conf.broker_url = saved
    app._pool = None
    app.amqp._producer_pool = None


def test_redis_down_marks_the_job_failed_instead_of_500(
    client, admin_user, project, uploads, settings, django_capture_on_commit_callbacks, broker_down, caplog
):
    # given Redis is unreachable and the upload goes to Celery
    settings.IMPORT_INLINE_MAX_BYTES = 0
    client.force_login(admin_user)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(client, project, jsonl_bytes(3))
    # then the admin lands on the job page, which says what happened
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert job.status == ImportJob.Status.FAILED and "task queue (Redis) is unreachable" in job.error
    assert "could not queue import job" in caplog.text
    assert stored_uploads(uploads) == [] and Pair.objects.count() == 0
    assert "task queue (Redis) is unreachable" in client.get(response["Location"]).content.decode()
