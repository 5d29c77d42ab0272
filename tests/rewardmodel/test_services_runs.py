"""Run lifecycle services against the real database and the real Redis broker."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from labeling import services as labeling_services
from labeling.models import Vote
from lib.errors import Conflict, InvalidInput
from rewardmodel import services, signals
from rewardmodel.errors import RunAlreadyActive
from rewardmodel.models import ModelVersion, RetrainPolicy, TrainingRun
from tests.rewardmodel.conftest import make_labelled_project, make_version
from tests.rewardmodel.workers import celery_broker, flush_redis_db, free_port

Status = TrainingRun.Status


@pytest.fixture
def broker():
    """The real Redis db this test run uses, emptied; returns a client to inspect the queues."""
    url = os.environ["REDIS_URL"]
    flush_redis_db(url)
    client = redis.Redis.from_url(url)
    yield client
    client.close()
    flush_redis_db(url)


def _queued_run_ids(client: redis.Redis, queue: str) -> list[int]:
    """The run ids of the task messages waiting in a Celery queue (kombu: base64 JSON [args, kwargs, embed])."""
    bodies = [json.loads(base64.b64decode(json.loads(message)["body"])) for message in client.lrange(queue, 0, -1)]
    return [args[0] for args, _kwargs, _embed in bodies]


# --------------------------------------------------------------------------- #
# Requesting
# --------------------------------------------------------------------------- #
def test_request_queues_a_run_and_sends_it_to_the_training_queue(
    labelled_project, admin_user, broker, django_capture_on_commit_callbacks
):
    # given a project with no run
    # when an admin asks for a run
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run_request(project=labelled_project, trigger="admin", user=admin_user)
    # then it is queued with its config, and after commit its message is on the `training` queue
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.requested_by == admin_user
    assert run.config["random_init"] is True and run.config["output_dir"] is None
    assert run.enqueued_at is not None and run.celery_task_id
    assert _queued_run_ids(broker, "training") == [run.pk]
    assert broker.llen("default") == 0


def test_second_request_while_one_is_active_names_the_existing_run(labelled_project, broker):
    # given a queued run
    first = services.training_run_request(project=labelled_project, trigger="admin")
    # when another trigger arrives
    with pytest.raises(RunAlreadyActive) as caught:
        services.training_run_request(project=labelled_project, trigger="schedule")
    # then it is refused with the existing run, and nothing new is written
    assert caught.value.run.pk == first.pk and caught.value.status == 409
    assert TrainingRun.objects.count() == 1


def test_invalid_policy_config_is_refused_before_anything_is_written(labelled_project):
    RetrainPolicy.objects.create(project=labelled_project, train_config={"epochs": -1})
    with pytest.raises(InvalidInput, match="epochs must be a positive integer"):
        services.training_run_request(project=labelled_project, trigger="admin")
    assert not TrainingRun.objects.exists()


def test_policy_update_validates_and_writes_nothing_on_bad_input(labelled_project):
    with pytest.raises(InvalidInput, match="unknown TrainConfig field"):
        services.retrain_policy_update(project=labelled_project, train_config={"nope": 1})
    with pytest.raises(InvalidInput, match="min_new_votes"):
        services.retrain_policy_update(project=labelled_project, min_new_votes=0)
    assert not RetrainPolicy.objects.exists()
    policy = services.retrain_policy_update(project=labelled_project, min_new_votes=7, train_config={"epochs": 1})
    assert (policy.min_new_votes, policy.train_config) == (7, {"epochs": 1})


def test_enqueue_failure_is_logged_quickly_and_leaves_the_run_queued(
    labelled_project, caplog, django_capture_on_commit_callbacks
):
    # given a broker nobody listens on
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"), caplog.at_level(logging.WARNING):
        started = time.monotonic()
        # when a run is requested and its message cannot be sent
        with django_capture_on_commit_callbacks(execute=True):
            run = services.training_run_request(project=labelled_project, trigger="admin")
        elapsed = time.monotonic() - started
    # then the request still succeeds, quickly, with the failure logged for the reconciler
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.enqueued_at is None
    assert f"Could not enqueue training run {run.pk}" in caplog.text
    assert elapsed < 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_start_exactly_one_run(rm_settings, broker):
    # given a project, and eight triggers arriving at once
    project = make_labelled_project(n=10)
    outcomes, barrier = [], threading.Barrier(8)

    def trigger():
        barrier.wait()
        try:
            outcomes.append(services.training_run_request(project=project, trigger="api").pk)
        except RunAlreadyActive as exc:
            outcomes.append(("conflict", exc.run.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then one run exists, and every other trigger was told its id
    run = TrainingRun.objects.get()
    assert outcomes.count(run.pk) == 1
    assert sorted(o for o in outcomes if o != run.pk) == [("conflict", run.pk)] * 7


# --------------------------------------------------------------------------- #
# Claiming and heartbeats
# --------------------------------------------------------------------------- #
def test_claim_is_conditional_so_a_duplicate_message_does_nothing(labelled_project):
    run = services.training_run_request(project=labelled_project, trigger="admin")
    claimed = services.training_run_claim(run_id=run.pk, task_id="t1", host="gpu-1")
    assert claimed.status == Status.RUNNING and claimed.attempt == 1 and claimed.worker_host == "gpu-1"
    assert services.training_run_claim(run_id=run.pk, task_id="t2", host="gpu-2") is None
    run.refresh_from_db()
    assert (run.attempt, run.celery_task_id) == (1, "t1")


def test_heartbeat_reports_cancel_and_loss_of_ownership(labelled_project):
    run = services.training_run_request(project=labelled_project, trigger="admin")
    services.training_run_claim(run_id=run.pk, task_id="t", host="h")
    answer = services.training_run_beat(
        run_id=run.pk, attempt=1, progress=0.5, phase="train", metrics={"train_loss": float("nan"), "epoch": 1}
    )
    assert answer.owned and not answer.cancel_requested
    run.refresh_from_db()
    assert (run.progress, run.phase, run.progress_metrics) == (0.5, "train", {"train_loss": None, "epoch": 1})
    services.training_run_cancel(run=run)
    assert services.training_run_beat(run_id=run.pk, attempt=1, progress=0.6, phase="train").cancel_requested
    assert not services.training_run_beat(run_id=run.pk, attempt=2, progress=0.6, phase="train").owned


# --------------------------------------------------------------------------- #
# Cancel
# --------------------------------------------------------------------------- #
def test_cancel_queued_run_at_once_and_finished_run_not_at_all(labelled_project):
    run = services.training_run_request(project=labelled_project, trigger="admin")
    run = services.training_run_cancel(run=run)
    assert run.status == Status.CANCELLED and run.finished_at is not None
    # a message delivered later finds nothing to do
    assert services.training_run_claim(run_id=run.pk, task_id="t", host="h") is None
    with pytest.raises(Conflict, match="already cancelled"):
        services.training_run_cancel(run=run)


# --------------------------------------------------------------------------- #
# Reconciler
# --------------------------------------------------------------------------- #
def _running(project, *, attempt: int, seconds_ago: float, cancel: bool = False) -> TrainingRun:
    run = services.training_run_request(project=project, trigger="admin")
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        attempt=attempt,
        cancel_requested=cancel,
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago),
    )
    return run


def test_reconciler_requeues_a_lost_first_attempt_and_resends_it(labelled_project, settings, broker):
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS, settings.RM_MAX_ATTEMPTS = 60, 2
    run = _running(labelled_project, attempt=1, seconds_ago=61)
    # given stale temp files of the lost attempt
    from rewardmodel import artifacts

    names = {"project_id": labelled_project.pk, "run_id": run.pk, "attempt": 1, "key": run.artifact_key}
    stale = artifacts.temp_dir_create(**names)
    orphan = artifacts.final_dir(**names)
    orphan.mkdir()  # published just before the worker died, never recorded
    report = services.training_runs_reconcile()
    run.refresh_from_db()
    assert report.requeued == [run.pk] and report.resent == [run.pk]
    assert run.status == Status.QUEUED and "Worker lost on attempt 1" in run.error
    assert _queued_run_ids(broker, "training") == [run.pk]
    assert not stale.exists() and not orphan.exists()
    # and the next claim is attempt 2
    assert services.training_run_claim(run_id=run.pk, task_id="t", host="h").attempt == 2


def test_reconciler_times_out_a_lost_run_that_started_before_the_hard_limit(labelled_project, settings):
    # given a first attempt, lost, that started longer ago than the hard time limit
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS, settings.RM_MAX_ATTEMPTS = 60, 3
    settings.TRAINING_HARD_TIME_LIMIT = 600
    run = _running(labelled_project, attempt=1, seconds_ago=61)
    TrainingRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=700))
    # when reconciled, then it fails "timed out" instead of going back to the queue
    report = services.training_runs_reconcile()
    run.refresh_from_db()
    assert report.failed == [run.pk] and report.requeued == []
    assert run.status == Status.FAILED and run.phase == "timed out" and run.error.startswith("Timed out")


def test_reconciler_fails_a_lost_last_attempt(labelled_project, settings):
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS, settings.RM_MAX_ATTEMPTS = 60, 2
    run = _running(labelled_project, attempt=2, seconds_ago=61)
    assert services.training_runs_reconcile().failed == [run.pk]
    run.refresh_from_db()
    assert run.status == Status.FAILED and run.error.startswith("Worker lost") and run.finished_at


def test_reconciler_leaves_a_live_run_alone_and_finishes_a_lost_cancel(labelled_project, settings):
    settings.RM_HEARTBEAT_TIMEOUT_SECONDS = 60
    live = _running(labelled_project, attempt=1, seconds_ago=5)
    report = services.training_runs_reconcile()
    assert report.requeued == report.failed == report.cancelled == []
    live.refresh_from_db()
    assert live.status == Status.RUNNING
    TrainingRun.objects.filter(pk=live.pk).update(
        cancel_requested=True, heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    assert services.training_runs_reconcile().cancelled == [live.pk]


def test_reconciler_resends_a_queued_run_the_broker_never_got(labelled_project, settings, broker):
    settings.RM_ENQUEUE_GRACE_SECONDS = 0
    run = services.training_run_request(project=labelled_project, trigger="admin")  # on_commit never ran
    assert run.enqueued_at is None
    assert services.training_runs_reconcile().resent == [run.pk]
    run.refresh_from_db()
    assert run.enqueued_at is not None
    assert _queued_run_ids(broker, "training") == [run.pk]


# --------------------------------------------------------------------------- #
# Scheduler
# --------------------------------------------------------------------------- #
def _succeeded(project, *, hours_ago: float = 0) -> TrainingRun:
    when = timezone.now() - timedelta(hours=hours_ago)
    return TrainingRun.objects.create(
        project=project, trigger="cli", status=Status.SUCCEEDED, snapshot_at=when, finished_at=when
    )


def _vote(project, annotator_user):
    assignment = labeling_services.assignment_next(project=project, user=annotator_user)
    labeling_services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")


@pytest.fixture
def open_project(db, rm_settings, annotator_user):
    """A labelled project whose pairs still want votes (overlap 4, three imported each)."""
    return make_labelled_project(slug="open", members=[annotator_user], overlap_target=4)


def test_schedule_waits_for_n_new_votes_since_the_last_successful_run(open_project, annotator_user, broker):
    # given a successful run that read the data just now, and a threshold of 2 new votes
    services.retrain_policy_update(project=open_project, min_new_votes=2)
    _succeeded(open_project)
    _vote(open_project, annotator_user)
    # when one new vote is in, nothing is due
    assert services.training_runs_schedule_due() == []
    # when the second arrives, a scheduled run is queued
    _vote(open_project, annotator_user)
    (run,) = services.training_runs_schedule_due()
    assert run.trigger == TrainingRun.Trigger.SCHEDULE
    assert "2 new votes" in TrainingRun.objects.get(pk=run.pk).promotion_note
    # and not again while it is active
    _vote(open_project, annotator_user)
    _vote(open_project, annotator_user)
    assert services.training_runs_schedule_due() == []


def test_schedule_counts_all_votes_before_the_first_run(open_project):
    votes = Vote.objects.filter(project=open_project).count()
    services.retrain_policy_update(project=open_project, min_new_votes=votes + 1)
    assert services.training_runs_schedule_due() == []
    services.retrain_policy_update(project=open_project, min_new_votes=votes)
    assert len(services.training_runs_schedule_due()) == 1


def test_schedule_interval_needs_a_new_vote_and_respects_disable(open_project, annotator_user):
    # given a successful run 25 h ago that saw every vote so far
    services.retrain_policy_update(project=open_project, min_new_votes=1000, max_interval_hours=24)
    Vote.objects.update(created_at=timezone.now() - timedelta(hours=26))
    _succeeded(open_project, hours_ago=25)
    assert services.training_runs_schedule_due() == []  # interval passed, but no new data
    _vote(open_project, annotator_user)
    services.retrain_policy_update(project=open_project, enabled=False)
    assert services.training_runs_schedule_due() == []
    services.retrain_policy_update(project=open_project, enabled=True)
    (run,) = services.training_runs_schedule_due()
    assert "24 h" in TrainingRun.objects.get(pk=run.pk).promotion_note


def test_schedule_backs_off_after_a_failed_run(open_project, settings):
    settings.RM_RETRY_BACKOFF_SECONDS = 600
    services.retrain_policy_update(project=open_project, min_new_votes=1)
    TrainingRun.objects.create(
        project=open_project,
        trigger="schedule",
        status=Status.FAILED,
        finished_at=timezone.now() - timedelta(seconds=60),
    )
    assert services.training_runs_schedule_due() == []
    TrainingRun.objects.update(finished_at=timezone.now() - timedelta(seconds=601))
    assert len(services.training_runs_schedule_due()) == 1


# --------------------------------------------------------------------------- #
# Versions: promotion by hand and rollback
# --------------------------------------------------------------------------- #
def test_rollback_activates_an_older_version_and_tells_the_dashboard(labelled_project, tiny_model_dirs, admin_user):
    from dashboard.models import ProjectStats

    # given v1 (old) and v2 (live), and a listener on the activation signal
    calls = []

    def listener(sender, version, **kwargs):
        calls.append(version.pk)

    signals.version_activated.connect(listener)
    try:
        v1 = make_version(labelled_project, tiny_model_dirs[0], number=1, active=False)
        v2 = make_version(labelled_project, tiny_model_dirs[1], number=2, active=True)
        # when an admin rolls back to v1
        services.model_version_activate(version=v1, user=admin_user)
    finally:
        signals.version_activated.disconnect(listener)
    # then v1 alone is live, recorded as theirs, and the dashboard heard of it
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.is_active and not v2.is_active
    assert v1.promoted_by == admin_user and v1.promoted_at is not None
    assert calls == [v1.pk]
    assert ProjectStats.objects.get(project=labelled_project).active_version_id == v1.pk


def test_a_version_with_changed_files_or_nan_metrics_cannot_go_live(
    labelled_project, tiny_model_dirs, tmp_path, admin_user
):
    import shutil

    folder = Path(shutil.copytree(tiny_model_dirs[0], tmp_path / "copy"))
    tampered = make_version(labelled_project, folder, number=1, active=False)
    live = make_version(labelled_project, tiny_model_dirs[1], number=2, active=True)
    (folder / "reward_meta.json").write_text("{}")
    with pytest.raises(Conflict, match="reward_meta.json"):
        services.model_version_activate(version=tampered, user=admin_user)
    nan = make_version(
        labelled_project, tiny_model_dirs[0], number=3, active=False, metrics={"held_out_accuracy": None}
    )
    with pytest.raises(InvalidInput, match="not finite"):
        services.model_version_activate(version=nan, user=admin_user)
    assert list(ModelVersion.objects.filter(is_active=True)) == [live]
