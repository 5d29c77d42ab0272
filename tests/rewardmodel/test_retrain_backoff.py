"""The scheduler after failures: exponential backoff, then a pause that admins see and lift."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.selectors import dashboard_payload
from rewardmodel import selectors, services
from rewardmodel.models import RetrainPolicy, TrainingRun
from tests.rewardmodel.conftest import make_labelled_project

Status = TrainingRun.Status


@pytest.fixture
def project(db, rm_settings, settings):
    settings.RM_RETRY_BACKOFF_SECONDS = 600
    settings.RM_RETRY_BACKOFF_MAX_SECONDS = 3000
    settings.RM_PAUSE_AFTER_FAILURES = 4
    project = make_labelled_project(slug="flaky")
    services.retrain_policy_update(project=project, min_new_votes=1)
    return project


def _ended(project, status: str, *, seconds_ago: float, error: str = "") -> TrainingRun:
    when = timezone.now() - timedelta(seconds=seconds_ago)
    run = TrainingRun.objects.create(project=project, trigger="schedule", status=status, finished_at=when, error=error)
    TrainingRun.objects.filter(pk=run.pk).update(created_at=when)  # runs are ordered by creation
    return run


def _due(project, seconds_from_now: float = 0) -> bool:
    now = timezone.now() + timedelta(seconds=seconds_from_now)
    return selectors.retrain_due_reason(project=project, policy=RetrainPolicy.for_project(project), now=now) is not None


@pytest.mark.parametrize("failures, wait", [(1, 600), (2, 1200), (3, 2400)])
def test_backoff_doubles_with_each_consecutive_failure(project, failures, wait):
    # given `failures` failed runs in a row, the last one just now
    for i in range(failures):
        _ended(project, Status.FAILED, seconds_ago=failures - i)
    # then nothing is due until the backoff has passed, then the project is
    assert not _due(project, seconds_from_now=wait - 5)
    assert _due(project, seconds_from_now=wait + 5)


def test_backoff_is_capped_and_a_success_resets_it(project, settings):
    settings.RM_PAUSE_AFTER_FAILURES = 0  # never pause, to see the cap
    for i in range(6):
        _ended(project, Status.FAILED, seconds_ago=100 - i)
    assert selectors.retry_backoff_seconds(failures=6) == 3000
    assert _due(project, seconds_from_now=3000)
    # when a run succeeds and the next one fails, the wait is the first step again
    _ended(project, Status.SUCCEEDED, seconds_ago=50)
    _ended(project, Status.FAILED, seconds_ago=40)
    assert len(selectors.consecutive_failures(project=project, policy=RetrainPolicy.for_project(project))) == 1
    assert _due(project, seconds_from_now=600)


def test_cancelled_runs_do_not_count_as_failures(project):
    for i in range(5):
        _ended(project, Status.CANCELLED, seconds_ago=5000 - i)
    assert services.training_runs_schedule_due() != []
    assert RetrainPolicy.for_project(project).paused_at is None


def test_after_n_consecutive_failures_the_policy_pauses_itself_and_admins_are_told(
    project, caplog, client, admin_user, reviewer_user
):
    # given four failed runs in a row, long enough ago for any backoff
    for i in range(4):
        _ended(project, Status.FAILED, seconds_ago=90_000 - i, error=f"CUDA out of memory ({i})")
    # when the scheduler runs
    with caplog.at_level(logging.ERROR, logger="rewardmodel.services"):
        started = services.training_runs_schedule_due()
    # then nothing is queued, the policy is paused with the reason, and the log says so
    assert started == []
    policy = RetrainPolicy.for_project(project)
    assert policy.paused_at is not None and "4 consecutive failed runs" in policy.pause_reason
    assert "CUDA out of memory (3)" in policy.pause_reason
    assert "Automatic retraining of flaky paused" in caplog.text
    # and it stays paused however long one waits
    assert not _due(project, seconds_from_now=10 * 86400)
    # and admins see it on the runs page, with a button to resume
    client.force_login(admin_user)
    page = client.get(reverse("rewardmodel:runs", args=[project.slug])).content.decode()
    assert 'data-testid="retrain-paused"' in page and 'data-testid="retrain-resume"' in page
    # and reviewers see a red flag on the dashboard
    flags = dashboard_payload(project=project)["red_flags"]
    assert flags[0]["code"] == "retraining_paused" and flags[0]["severity"] == "severe"
    # when an admin resumes it
    response = client.post(reverse("rewardmodel:policy-resume", args=[project.slug]))
    assert response.status_code == 302
    # then the scheduler may retrain again, and the old failures no longer count
    policy = RetrainPolicy.for_project(project)
    assert policy.paused_at is None and policy.resumed_at is not None
    assert selectors.consecutive_failures(project=project, policy=policy) == []
    assert len(services.training_runs_schedule_due()) == 1
    assert "retraining_paused" not in [f["code"] for f in dashboard_payload(project=project)["red_flags"]]


def test_only_retrainers_may_resume(project, client, reviewer_user):
    client.force_login(reviewer_user)
    assert client.post(reverse("rewardmodel:policy-resume", args=[project.slug])).status_code == 403
