"""The run pages in words: who started a run, its progress and time left, what became of its version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rewardmodel.models import ModelVersion, TrainingRun
from rewardmodel.templatetags.run_format import (
    duration_text,
    eta_text,
    outcome_text,
    phase_text,
    progress_rows,
    run_eta,
    trigger_text,
)


def test_trigger_and_phase_read_as_words(labelled_project, admin_user):
    by_hand = TrainingRun(project=labelled_project, trigger="admin", requested_by=admin_user)
    assert trigger_text(by_hand) == "by hand by adam"
    assert trigger_text(TrainingRun(project=labelled_project, trigger="schedule")) == "by the schedule"
    assert phase_text("snapshot") == "reading the votes"
    assert phase_text("") == "waiting for a worker"


def test_running_metrics_read_as_words():
    rows = progress_rows({"lr": 2e-5, "train_batch_accuracy": 0.8125, "epoch": 2, "member": 0, "grad_norm": 1.23456})
    assert rows == [
        ("Epoch", "2"),
        ("Ensemble member", "1"),
        ("Training accuracy (recent batches)", "81.2%"),
        ("Learning rate", "2.0e-05"),
        ("Grad norm", "1.235"),
    ]


def test_time_left_follows_the_pace_so_far(labelled_project):
    # given a run that took 60 s for its first quarter
    now = timezone.now()
    run = TrainingRun(project=labelled_project, trigger="cli", status="running", progress=0.25)
    run.started_at = now - timedelta(seconds=60)
    # then about three times that is left
    assert run_eta(run, now) == timedelta(seconds=180)
    assert eta_text(run) == "about 3 min left"
    # and too early, or not running, it does not guess
    run.progress = 0.05
    assert eta_text(run) == "estimating time left…"
    run.status = "succeeded"
    assert eta_text(run) == ""
    assert (duration_text(timedelta(seconds=42)), duration_text(timedelta(minutes=95))) == ("42 s", "1 h 35 min")


def test_a_version_promoted_by_hand_says_so(labelled_project, admin_user):
    run = TrainingRun.objects.create(project=labelled_project, trigger="cli", status="succeeded", promoted=False)
    assert outcome_text(run) == "not promoted"
    ModelVersion.objects.create(
        project=labelled_project,
        run=run,
        number=1,
        artifact_dir="/x",
        is_active=True,
        promoted_by=admin_user,
        promoted_at=timezone.now(),
    )
    run = TrainingRun.objects.select_related("model_version__promoted_by").get(pk=run.pk)
    assert outcome_text(run) == "promoted by hand by adam · live"


@pytest.fixture
def pages(client, labelled_project, admin_user):
    done = TrainingRun.objects.create(
        project=labelled_project, trigger="admin", requested_by=admin_user, status="succeeded", promoted=True
    )
    ModelVersion.objects.create(project=labelled_project, run=done, number=1, artifact_dir="/x", is_active=False)
    ModelVersion.objects.create(
        project=labelled_project,
        run=TrainingRun.objects.create(project=labelled_project, trigger="cli", status="succeeded", promoted=True),
        number=2,
        artifact_dir="/y",
        is_active=True,
    )
    running = TrainingRun.objects.create(
        project=labelled_project,
        trigger="schedule",
        status="running",
        progress=0.5,
        phase="train",
        started_at=timezone.now() - timedelta(minutes=2),
        progress_metrics={"lr": 0.00003, "train_loss": 0.61234},
    )
    client.force_login(admin_user)
    return {"runs": reverse("rewardmodel:runs", args=[labelled_project.slug]), "running": running}


def test_runs_page_speaks_one_vocabulary_and_asks_before_acting(client, pages):
    html = client.get(pages["runs"]).content.decode()
    assert "Train / held-out pairs" in html and "Train / test" not in html and "eval pairs" not in html
    assert "by hand by adam" in html and "by the schedule" in html
    assert 'data-confirm="Roll back to v1?' in html


def test_run_page_shows_progress_in_words_with_time_left(client, pages):
    html = client.get(reverse("rewardmodel:run-detail", args=[pages["running"].pk])).content.decode()
    assert "Started by the schedule" in html
    assert '<span data-testid="run-phase">training</span>' in html
    assert '<span data-testid="run-eta">about 2 min left</span>' in html
    assert '<th>Learning rate</th><td class="num">3.0e-05</td>' in html
    assert "<th>lr</th>" not in html and "<th>train_loss</th>" not in html
    assert 'data-confirm="Cancel run #' in html


def test_retrain_flashes_no_message_that_would_go_stale(client, labelled_project, admin_user, monkeypatch):
    # given an admin pressing Retrain now (no broker needed: the run only has to be queued)
    from rewardmodel import services

    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)
    client.force_login(admin_user)
    response = client.post(reverse("rewardmodel:run-start", args=[labelled_project.slug]), follow=True)
    # then the run page itself says the status, and no "Run N queued." sits beside it as the run moves on
    html = response.content.decode()
    assert 'data-testid="run-status">Queued' in html
    assert "queued." not in html and 'class="messages"' not in html
