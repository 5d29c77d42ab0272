"""manage.py retrain and issue_token."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rewardmodel import services
from rewardmodel.models import ModelVersion, TrainingRun


def _retrain(*args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("retrain", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_retrain_prints_the_run_as_json_on_its_last_line(labelled_project, monkeypatch):
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)
    code, out, _ = _retrain("--project", labelled_project.slug)
    status = json.loads(out.strip().splitlines()[-1])
    run = TrainingRun.objects.get()
    assert code == 0 and status["id"] == run.pk and status["status"] == "queued"
    assert run.trigger == "cli"
    # a second call while it is queued says so and exits 1, with that run's JSON last
    code, out, err = _retrain("--project", labelled_project.slug)
    assert code == 1 and "Already running" in err
    assert json.loads(out.strip().splitlines()[-1])["id"] == run.pk


def test_retrain_unknown_project_is_an_error(db):
    with pytest.raises(CommandError, match="No project"):
        call_command("retrain", "--project", "nope")


@pytest.mark.worker
@pytest.mark.slow
def test_retrain_wait_follows_the_run_on_a_real_worker(celery_worker, rm_settings):
    # given a labelled project and a worker
    from tests.rewardmodel.conftest import make_labelled_project

    project = make_labelled_project()
    # when the CLI starts a run and waits
    code, out, err = _retrain("--project", project.slug, "--wait", "--timeout", "120", "--poll", "0.2")
    # then it prints progress, and its last line is the finished run
    status = json.loads(out.strip().splitlines()[-1])
    assert code == 0, err
    assert status["status"] == "succeeded" and status["version"] == 1 and status["promoted"] is True
    assert "run " in err and ModelVersion.objects.get().is_active


def test_issue_token_prints_a_token_for_the_user(admin_user, client):
    out = StringIO()
    call_command("issue_token", "--user", admin_user.username, "--name", "cli", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    assert raw.startswith("rmt_")
    assert client.get("/api/v1/projects", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    with pytest.raises(CommandError, match="No active user"):
        call_command("issue_token", "--user", "ghost", "--name", "x")
