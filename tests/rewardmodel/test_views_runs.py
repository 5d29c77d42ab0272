"""Runs and run pages: permissions, buttons, messages, polling."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rewardmodel import services
from rewardmodel.models import ModelVersion, TrainingRun
from tests.rewardmodel.conftest import make_version

Status = TrainingRun.Status


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)


def _runs_url(project):
    return reverse("rewardmodel:runs", args=[project.slug])


def test_annotators_get_403_on_every_run_page(client, labelled_project, annotator_user):
    run = services.training_run_request(project=labelled_project, trigger="admin")
    client.force_login(annotator_user)
    for url in (
        _runs_url(labelled_project),
        reverse("rewardmodel:run-detail", args=[run.pk]),
        reverse("rewardmodel:run-progress", args=[run.pk]),
        reverse("rewardmodel:runs-table", args=[labelled_project.slug]),
    ):
        assert client.get(url).status_code == 403
    for url in (
        reverse("rewardmodel:run-start", args=[labelled_project.slug]),
        reverse("rewardmodel:run-cancel", args=[run.pk]),
    ):
        assert client.post(url).status_code == 403
    assert TrainingRun.objects.get().status == Status.QUEUED


def test_reviewer_sees_runs_and_versions_without_buttons(client, labelled_project, reviewer_user, tiny_model_dirs):
    make_version(labelled_project, tiny_model_dirs[0], number=1, active=False)
    make_version(labelled_project, tiny_model_dirs[1], number=2, active=True)
    client.force_login(reviewer_user)
    page = client.get(_runs_url(labelled_project)).content.decode()
    assert "Model versions" in page and "v2" in page and 'data-testid="active-version"' in page
    assert "Retrain now" not in page and "Roll back" not in page
    assert client.post(reverse("rewardmodel:run-start", args=[labelled_project.slug])).status_code == 403


def test_admin_retrain_button_queues_a_run_then_says_already_running(client, labelled_project, admin_user):
    # given an admin on the runs page, which offers "Retrain now"
    client.force_login(admin_user)
    assert "Retrain now" in client.get(_runs_url(labelled_project)).content.decode()
    # when they press it
    response = client.post(reverse("rewardmodel:run-start", args=[labelled_project.slug]))
    # then a run is queued and they land on its page, which polls for progress
    run = TrainingRun.objects.get()
    assert run.trigger == "admin" and run.requested_by == admin_user
    assert response.url == reverse("rewardmodel:run-detail", args=[run.pk])
    page = client.get(response.url).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Cancel run" in page
    # when they press it again
    again = client.post(reverse("rewardmodel:run-start", args=[labelled_project.slug]), follow=True)
    # then no second run: they are told it is already running, on its page
    assert TrainingRun.objects.count() == 1
    assert f"Already running: run {run.pk} is queued" in again.content.decode()
    assert again.redirect_chain[-1][0] == reverse("rewardmodel:run-detail", args=[run.pk])


def test_runs_body_polls_only_while_a_run_is_active(client, labelled_project, admin_user):
    client.force_login(admin_user)
    table = reverse("rewardmodel:runs-table", args=[labelled_project.slug])
    assert b"every 2s" not in client.get(table).content
    run = services.training_run_request(project=labelled_project, trigger="admin")
    assert b"every 2s" in client.get(table).content
    services.training_run_cancel(run=run)
    assert b"every 2s" not in client.get(table).content


def test_finished_run_page_shows_metrics_and_stops_polling(client, labelled_project, reviewer_user, tiny_model_dirs):
    version = make_version(labelled_project, tiny_model_dirs[0])
    TrainingRun.objects.filter(pk=version.run_id).update(
        metrics={"held_out_accuracy": 0.8125, "held_out_accuracy_ci": [0.7, 0.9], "eval_loss": 0.41},
        promotion_note="Promoted: first version (held-out accuracy 0.812).",
    )
    client.force_login(reviewer_user)
    page = client.get(reverse("rewardmodel:run-progress", args=[version.run_id])).content.decode()
    assert "0.812" in page and "Promoted: first version" in page
    assert "hx-trigger" not in page and "Cancel run" not in page


def test_cancel_button_cancels_a_queued_run(client, labelled_project, admin_user):
    run = services.training_run_request(project=labelled_project, trigger="admin")
    client.force_login(admin_user)
    response = client.post(reverse("rewardmodel:run-cancel", args=[run.pk]), follow=True)
    assert "Cancelled." in response.content.decode()
    run.refresh_from_db()
    assert run.status == Status.CANCELLED


def test_rollback_button_makes_an_older_version_live(client, labelled_project, admin_user, tiny_model_dirs):
    old = make_version(labelled_project, tiny_model_dirs[0], number=1, active=False)
    make_version(labelled_project, tiny_model_dirs[1], number=2, active=True)
    client.force_login(admin_user)
    assert "Roll back to v1" in client.get(_runs_url(labelled_project)).content.decode()
    response = client.post(reverse("rewardmodel:version-activate", args=[old.pk]), follow=True)
    assert "Version 1 is live." in response.content.decode()
    assert ModelVersion.objects.get(is_active=True) == old


def test_home_page_links_to_runs_for_reviewers_not_annotators(client, labelled_project, reviewer_user, annotator_user):
    client.force_login(reviewer_user)
    assert _runs_url(labelled_project) in client.get("/").content.decode()
    client.force_login(annotator_user)
    assert _runs_url(labelled_project) not in client.get("/").content.decode()


def test_pages_send_no_inline_script_or_style(client, labelled_project, admin_user, tiny_model_dirs):
    make_version(labelled_project, tiny_model_dirs[0])
    run = services.training_run_request(project=labelled_project, trigger="admin")
    client.force_login(admin_user)
    for url in (
        _runs_url(labelled_project),
        reverse("rewardmodel:run-detail", args=[run.pk]),
        reverse("accounts:tokens"),
    ):
        html = client.get(url).content.decode()
        assert " style=" not in html and "<script>" not in html and " onclick" not in html


def test_a_queued_run_page_says_what_it_waits_for(client, labelled_project, reviewer_user, rm_settings):
    from datetime import timedelta

    from django.utils import timezone

    from tests.rewardmodel.conftest import make_labelled_project

    client.force_login(reviewer_user)
    other = make_labelled_project(slug="other")
    busy = TrainingRun.objects.create(project=other, trigger="admin", status="running", progress=0.42)
    queued = TrainingRun.objects.create(project=labelled_project, trigger="admin", status="queued")
    url = reverse("rewardmodel:run-progress", args=[queued.pk])
    # not sent yet (the broker was down)
    assert "Not sent to the task queue yet" in client.get(url).content.decode()
    # sent, behind another project's run
    TrainingRun.objects.filter(pk=queued.pk).update(enqueued_at=timezone.now())
    card = client.get(url).content.decode()
    assert f"Waiting for a training worker: run {busy.pk} of other (42%) is training." in card
    # sent long ago with nothing ahead of it: no training worker seems to be there
    TrainingRun.objects.filter(pk=busy.pk).update(status="succeeded")
    TrainingRun.objects.filter(pk=queued.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    card = client.get(reverse("rewardmodel:run-detail", args=[queued.pk])).content.decode()
    assert "No training worker has taken it in" in card and "`training` queue" in card


def test_a_queued_head_waits_on_its_own_queue_not_behind_fine_tunes(labelled_project, rm_settings):
    from django.utils import timezone

    from rewardmodel.selectors import training_run_wait_reason
    from tests.rewardmodel.conftest import make_labelled_project

    # given a fine-tune training on another project, and a head queued (heads go to the fast queue)
    other = make_labelled_project(slug="other")
    TrainingRun.objects.create(project=other, trigger="admin", status="running", progress=0.42)
    head = TrainingRun.objects.create(
        project=labelled_project, kind="head", trigger="admin", status="queued", enqueued_at=timezone.now()
    )
    # then its page does not say it waits for that fine-tune, and names the queue it is on
    reason = training_run_wait_reason(run=head)
    assert reason == f"Waiting for a worker on the `{rm_settings.RM_RUN_QUEUES['head']}` queue."
    # while a head running elsewhere is in its way
    busy = TrainingRun.objects.create(project=other, kind="head", trigger="admin", status="running", progress=0.5)
    assert f"run {busy.pk} of other (50%) is training" in training_run_wait_reason(run=head)
