"""Retraining on real Celery worker processes and real Redis: the happy
path, and the faults the issue lists (worker killed, worker stalled,
task raising, Redis down, Cancel)."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import pytest
from django.urls import reverse

from labeling.models import Assignment, Vote
from rewardmodel import artifacts, services
from rewardmodel.models import ModelVersion, TrainingRun
from tests.rewardmodel.conftest import make_labelled_project
from tests.rewardmodel.workers import RedisServer, celery_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

Status = TrainingRun.Status


def _run(run_id: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=run_id)


def _finished(run_id: int) -> TrainingRun | None:
    run = _run(run_id)
    return run if run.status not in TrainingRun.ACTIVE_STATUSES else None


def _visible_folders(project) -> list[Path]:
    root = artifacts.project_dir(project_id=project.pk)
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def _assert_every_visible_folder_is_a_whole_version(project) -> None:
    for folder in _visible_folders(project):
        version = ModelVersion.objects.filter(artifact_dir=str(folder)).first()
        assert version is not None, f"{folder} is visible but belongs to no version"
        assert artifacts.checksums_mismatched(folder=folder, expected=version.checksums) == []


@pytest.fixture
def project(transactional_db, rm_settings, annotator_user):
    return make_labelled_project(members=[annotator_user])


def test_admin_retrain_runs_on_a_worker_with_live_progress(project, celery_worker, client, admin_user):
    # given a slow-ish run so its progress can be watched, and an admin on the runs page
    services.retrain_policy_update(project=project, train_config={"epochs": 12})
    client.force_login(admin_user)
    # when the admin presses "Retrain now"
    response = client.post(reverse("rewardmodel:run-start", args=[project.slug]))
    run = TrainingRun.objects.get(project=project)
    assert response.status_code == 302 and response.url == reverse("rewardmodel:run-detail", args=[run.pk])
    # then the worker reports progress between 0 and 1 while it trains
    seen = wait_for(
        lambda: (r := _run(run.pk)).status == Status.RUNNING and 0.05 < r.progress < 1 and r,
        timeout=60,
        interval=0.05,
        what="live progress",
    )
    assert seen.heartbeat_at is not None and seen.worker_host
    fragment = client.get(reverse("rewardmodel:run-progress", args=[run.pk]))
    assert b'hx-trigger="every 1s"' in fragment.content
    # and it ends with a promoted, active version that has metrics
    run = wait_for(lambda: _finished(run.pk), timeout=120, what="the run to finish")
    assert run.status == Status.SUCCEEDED, run.error
    assert run.promoted is True and run.celery_task_id
    version = ModelVersion.objects.get(run=run)
    assert version.is_active and version.metrics["held_out_accuracy"] is not None
    # and the finished fragment stops polling
    assert b"every 1s" not in client.get(reverse("rewardmodel:run-progress", args=[run.pk])).content


def test_sigkilled_worker_run_is_retried_once_and_completes(project, celery_worker_factory, settings):
    # given an active version, and a new run that a worker is training
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS = 2
    settings.RM_MAX_ATTEMPTS = 2
    first = celery_worker_factory()
    old = services.training_run_request(project=project, trigger=TrainingRun.Trigger.CLI)
    wait_for(lambda: _finished(old.pk), timeout=120, what="the first run")
    active_before = ModelVersion.objects.get(is_active=True)
    # A longer second run, so the kill lands mid-training: with the default
    # tiny run it could land between publishing the folder and recording the
    # version (that folder is the reconciler's to remove, checked below).
    services.retrain_policy_update(project=project, train_config={"epochs": 12})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.API)
    wait_for(
        lambda: (r := _run(run.pk)).status == Status.RUNNING and r.progress > 0.05,
        timeout=60,
        interval=0.05,
        what="training to start",
    )
    # when the worker is SIGKILLed mid-run (its whole process group)
    first.kill()
    # then nothing new is live, and no half-written folder is visible
    assert ModelVersion.objects.get(is_active=True) == active_before
    _assert_every_visible_folder_is_a_whole_version(project)
    # when the heartbeat has gone stale and the reconciler runs, with a fresh worker up
    celery_worker_factory(flush=False)
    time.sleep(settings.RM_HEARTBEAT_TIMEOUT_SECONDS + 0.5)
    report = services.training_runs_reconcile()
    assert report.requeued == [run.pk] and report.resent == [run.pk]
    # then the second attempt completes, and only then does the active version change
    run = wait_for(lambda: _finished(run.pk), timeout=120, what="the retried run")
    assert run.status == Status.SUCCEEDED and run.attempt == 2, run.error
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert ModelVersion.objects.get(is_active=True).run_id in (run.pk, old.pk)
    _assert_every_visible_folder_is_a_whole_version(project)
    assert not list(artifacts.project_dir(project_id=project.pk).glob(".tmp-*"))


def test_stalled_worker_is_failed_by_the_reconciler_and_writes_nothing_after(project, celery_worker, settings):
    # given a run in training on a worker
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS = 2
    settings.RM_MAX_ATTEMPTS = 1
    services.retrain_policy_update(project=project, train_config={"epochs": 12})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.API)
    wait_for(
        lambda: (r := _run(run.pk)).status == Status.RUNNING and r.progress > 0.05,
        timeout=60,
        interval=0.05,
        what="training to start",
    )
    # when the worker stalls (SIGSTOP) past the heartbeat timeout and the reconciler runs
    celery_worker.signal(signal.SIGSTOP)
    try:
        time.sleep(settings.RM_HEARTBEAT_TIMEOUT_SECONDS + 0.5)
        report = services.training_runs_reconcile()
    finally:
        celery_worker.signal(signal.SIGCONT)
    # then the run is failed "worker lost"
    assert report.failed == [run.pk]
    run.refresh_from_db()
    assert run.status == Status.FAILED and run.error.startswith("Worker lost")
    # and when the worker wakes up it notices, stops, and records nothing
    wait_for(lambda: "is no longer ours" in celery_worker.log(), timeout=60, what="the worker to notice")
    time.sleep(1)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert not ModelVersion.objects.exists()
    assert _visible_folders(project) == []
    # and the project is free for a new run
    assert services.training_run_request(project=project, trigger=TrainingRun.Trigger.API).status == Status.QUEUED


def test_task_that_raises_fails_the_run_and_frees_the_project(project, celery_worker_factory, settings):
    # given a project whose engine config makes training raise: a backbone allowed here, but missing
    settings.RM_ALLOWED_BACKBONES = ["/nonexistent/backbone"]
    celery_worker_factory(env={"RM_ALLOWED_BACKBONES": json.dumps(settings.RM_ALLOWED_BACKBONES)})
    services.retrain_policy_update(project=project, train_config={"backbone": "/nonexistent/backbone"})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.API)
    # when the worker runs it
    run = wait_for(lambda: _finished(run.pk), timeout=120, what="the run to finish")
    # then it is failed with the error's message, and another run may be queued
    assert run.status == Status.FAILED
    assert "nonexistent" in run.error
    services.retrain_policy_update(project=project, train_config={})
    again = services.training_run_request(project=project, trigger=TrainingRun.Trigger.API)
    assert wait_for(lambda: _finished(again.pk), timeout=120, what="the next run").status == Status.SUCCEEDED


def test_cancel_from_the_run_page_stops_the_worker_within_seconds(project, celery_worker, client, admin_user):
    # given a long run in training
    services.retrain_policy_update(project=project, train_config={"epochs": 500})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)
    wait_for(
        lambda: (r := _run(run.pk)).status == Status.RUNNING and r.progress > 0.05,
        timeout=60,
        interval=0.05,
        what="training to start",
    )
    client.force_login(admin_user)
    # when the admin presses Cancel
    pressed = time.monotonic()
    client.post(reverse("rewardmodel:run-cancel", args=[run.pk]))
    # then the worker stops it within seconds, and nothing goes live
    run = wait_for(lambda: _finished(run.pk), timeout=30, what="the run to stop")
    assert run.status == Status.CANCELLED
    assert time.monotonic() - pressed < 10
    assert not ModelVersion.objects.exists()


def test_votes_survive_redis_down_and_the_scheduler_enqueues_later(
    transactional_db, rm_settings, settings, annotator_user, client, caplog, celery_worker_factory
):
    # given a project one vote short of its retrain threshold, with Celery on a private Redis
    project = make_labelled_project(slug="rd", members=[annotator_user], overlap_target=4)
    imported = Vote.objects.filter(project=project).count()
    services.retrain_policy_update(project=project, min_new_votes=imported + 1)
    settings.RM_ENQUEUE_GRACE_SECONDS = 0
    client.force_login(annotator_user)
    broker = RedisServer().start()
    try:
        with celery_broker(broker.url):
            assert services.training_runs_schedule_due() == []
            # when Redis stops and the annotator votes
            broker.stop()
            client.get(reverse("label", args=[project.slug]))
            assignment = Assignment.objects.get(annotator__user=annotator_user)
            response = client.post(reverse("label-vote", args=[project.slug, assignment.pk]), {"choice": "left"})
            # then the vote is saved
            assert response.status_code == 302
            assert Vote.objects.filter(project=project).count() == imported + 1
            # when beat's scheduler runs while the broker is down
            with caplog.at_level(logging.WARNING, logger="rewardmodel.services"):
                started = time.monotonic()
                due = services.training_runs_schedule_due()
                elapsed = time.monotonic() - started
            # then the run is queued, the failed send is logged, and nothing hung
            assert len(due) == 1
            run = _run(due[0].pk)
            assert run.status == Status.QUEUED and run.enqueued_at is None
            assert "Could not enqueue training run" in caplog.text
            assert elapsed < 10
            # when Redis is back with a worker on it, and beat's reconciler runs
            broker.start()
            celery_worker_factory(redis_url=broker.url)
            report = services.training_runs_reconcile()
            # then the run is sent and trained
            assert report.resent == [run.pk]
            run = wait_for(lambda: _finished(run.pk), timeout=120, what="the run to finish")
            assert run.status == Status.SUCCEEDED, run.error
            assert run.trigger == TrainingRun.Trigger.SCHEDULE
    finally:
        broker.stop()


def test_run_past_the_hard_time_limit_is_marked_timed_out_by_the_parent_and_not_requeued(
    project, celery_worker_factory, settings
):
    # given a worker whose hard time limit is a few seconds, with no soft limit to stop the run
    # politely first (as when a run is stuck in native code past the soft limit)
    worker = celery_worker_factory(env={"TRAINING_HARD_TIME_LIMIT": "4", "TRAINING_SOFT_TIME_LIMIT": "0"})
    services.retrain_policy_update(project=project, train_config={"epochs": 500})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.API)
    # when the run outlives it
    run = wait_for(lambda: _finished(run.pk), timeout=120, what="the run to be stopped")
    # then the worker's parent marked it timed out (the child was killed before it could)
    assert run.status == Status.FAILED and run.phase == "timed out", (run.status, run.error, worker.log()[-2000:])
    assert run.error.startswith("Timed out: stopped at the hard time limit of 4 s")
    assert "Hard time limit (4" in worker.log()
    # and the reconciler, even with a short heartbeat timeout, leaves it failed: no second attempt
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS = 1
    time.sleep(1.5)
    report = services.training_runs_reconcile()
    run.refresh_from_db()
    assert report.requeued == [] and run.status == Status.FAILED and run.attempt == 1
    # and nothing it wrote is left on disk
    assert _visible_folders(project) == []
    assert not list(artifacts.project_dir(project_id=project.pk).glob(".tmp-*"))


def test_an_import_finishes_while_a_long_training_run_is_going(project, celery_worker_factory, settings, tmp_path):
    # given make run's workers: one for training, one for everything else
    from config.runstack import WORKERS
    from labeling import import_jobs
    from labeling.models import ImportJob

    for i, spec in enumerate(WORKERS):
        celery_worker_factory(queues=spec.queues, env=spec.env, flush=i == 0)
    # and a long run in training
    services.retrain_policy_update(project=project, train_config={"epochs": 500})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)
    wait_for(
        lambda: (r := _run(run.pk)).status == Status.RUNNING and r.progress > 0.05,
        timeout=60,
        interval=0.05,
        what="training to start",
    )
    # when an admin's upload is queued
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.IMPORT_UPLOAD_DIR.mkdir()
    path = settings.IMPORT_UPLOAD_DIR / "more.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"later {i}", "response_a": "yes", "response_b": "no"}) + "\n" for i in range(500)
        )
    )
    job = import_jobs.import_job_create(
        project=project,
        user=None,
        upload_path=path,
        file_name="more.jsonl",
        file_size=path.stat().st_size,
        fmt="pairwise",
        skip_invalid=False,
    )
    import_jobs.import_job_enqueue(job=job)
    # then it is imported while the run is still training
    done = wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.SUCCEEDED).first(),
        timeout=60,
        what="the import, beside the training run",
    )
    assert done.created == 500
    assert _run(run.pk).status == Status.RUNNING
    services.training_run_cancel(run=_run(run.pk))
    assert wait_for(lambda: _finished(run.pk), timeout=30, what="the cancel").status == Status.CANCELLED
