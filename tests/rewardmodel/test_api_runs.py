"""The retraining API: who may do what, and what the answers carry."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from rewardmodel import services
from rewardmodel.models import ModelVersion, TrainingRun
from tests.rewardmodel.conftest import make_version

Status = TrainingRun.Status


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    # Sending to Redis is covered in test_services_runs; here only the API matters.
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)


def _auth(user) -> dict:
    _, raw = account_services.api_token_issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_admin_starts_a_run_and_a_second_start_gets_409_with_its_id(client, labelled_project, admin_user):
    # given an admin's token
    headers = _auth(admin_user)
    # when they start a run
    response = client.post(f"/api/v1/projects/{labelled_project.slug}/runs", **headers)
    # then it is accepted and queued
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["trigger"] == "api" and body["requested_by"] == "adam"
    # when they start another while it is queued
    again = client.post(f"/api/v1/projects/{labelled_project.slug}/runs", **headers)
    # then 409 names the existing run
    assert again.status_code == 409
    assert again.json()["run_id"] == body["id"] and again.json()["status"] == "queued"
    assert "already queued" in again.json()["detail"]
    assert TrainingRun.objects.count() == 1


@pytest.mark.parametrize("who", ["annotator_user", "reviewer_user", "no_role_user"])
def test_only_retrainers_may_start_runs(client, labelled_project, who, request):
    response = client.post(f"/api/v1/projects/{labelled_project.slug}/runs", **_auth(request.getfixturevalue(who)))
    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_anonymous_gets_401(client, labelled_project):
    assert client.get(f"/api/v1/projects/{labelled_project.slug}/runs").status_code == 401


def test_reviewer_reads_runs_and_versions_annotator_gets_403(
    client, labelled_project, reviewer_user, annotator_user, tiny_model_dirs
):
    # given a finished run with a version, and a queued one
    version = make_version(labelled_project, tiny_model_dirs[0])
    TrainingRun.objects.filter(pk=version.run_id).update(metrics={"held_out_accuracy": 0.8})
    queued = services.training_run_request(project=labelled_project, trigger="admin")
    headers = _auth(reviewer_user)
    # when a reviewer lists them
    runs = client.get(f"/api/v1/projects/{labelled_project.slug}/runs", **headers).json()
    one = client.get(f"/api/v1/runs/{version.run_id}", **headers).json()
    versions = client.get(f"/api/v1/projects/{labelled_project.slug}/versions", **headers).json()
    # then they see status, progress and metrics
    assert [r["id"] for r in runs] == [queued.pk, version.run_id]
    assert one["status"] == "succeeded" and one["progress"] == 1.0 and one["version"] == 1
    assert one["metrics"] == {"held_out_accuracy": 0.8}
    assert versions[0]["number"] == 1 and versions[0]["is_active"] is True
    # and an annotator gets 403 on each
    annotator = _auth(annotator_user)
    for url in (
        f"/api/v1/projects/{labelled_project.slug}/runs",
        f"/api/v1/runs/{queued.pk}",
        f"/api/v1/projects/{labelled_project.slug}/versions",
    ):
        assert client.get(url, **annotator).status_code == 403


def test_unknown_project_or_run_is_404(client, admin_user, db):
    headers = _auth(admin_user)
    assert client.post("/api/v1/projects/nope/runs", **headers).status_code == 404
    assert client.get("/api/v1/runs/999999", **headers).status_code == 404


def test_cancel_and_rollback_through_the_api(client, labelled_project, admin_user, reviewer_user, tiny_model_dirs):
    headers = _auth(admin_user)
    run = services.training_run_request(project=labelled_project, trigger="admin")
    assert client.post(f"/api/v1/runs/{run.pk}/cancel", **_auth(reviewer_user)).status_code == 403
    response = client.post(f"/api/v1/runs/{run.pk}/cancel", **headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{run.pk}/cancel", **headers).status_code == 409
    old = make_version(labelled_project, tiny_model_dirs[0], number=1, active=False)
    make_version(labelled_project, tiny_model_dirs[1], number=2, active=True)
    response = client.post(f"/api/v1/versions/{old.pk}/activate", **headers)
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert ModelVersion.objects.get(is_active=True) == old


def test_openapi_documents_the_endpoints(client, db):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/projects/{slug}/runs" in paths
    assert "requestBody" in paths["/api/v1/projects/{slug}/score"]["post"]
