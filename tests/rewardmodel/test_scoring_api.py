"""POST /api/v1/projects/{slug}/score: the live model, its cache, and the caps."""

from __future__ import annotations

import json

import pytest

from accounts import services as account_services
from rewardmodel import scoring, services
from rewardmodel.training import RewardScorer
from tests.rewardmodel.conftest import make_version

ITEMS = [
    {"prompt": "What is 2 + 2?", "response": "4."},
    {"prompt": "What is 2 + 2?", "response": "It is probably 5, or maybe 22."},
    {"prompt": "Explain overfitting.", "response": "Learning the noise of the training data."},
]


@pytest.fixture(autouse=True)
def empty_cache():
    scoring.scorer_cache.clear()
    yield
    scoring.scorer_cache.clear()


@pytest.fixture
def admin_token(admin_user):
    _, raw = account_services.api_token_issue(user=admin_user, name="scoring")
    return raw


def _score(client, slug, token, payload, **extra):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post(
        f"/api/v1/projects/{slug}/score",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **extra,
    )


def test_scores_come_from_the_active_model_in_input_order(client, labelled_project, tiny_model_dirs, admin_token):
    # given an active version
    make_version(labelled_project, tiny_model_dirs[0])
    # when a client scores three items with a token
    response = _score(client, labelled_project.slug, admin_token, {"items": ITEMS})
    # then it gets raw and normalised rewards equal to the saved model's own scores
    assert response.status_code == 200, response.content
    body = response.json()
    expected_raw, expected_norm = RewardScorer.load(tiny_model_dirs[0]).score(
        [i["prompt"] for i in ITEMS], [i["response"] for i in ITEMS]
    )
    assert body["version"] == 1
    assert body["raw"] == pytest.approx(expected_raw, abs=1e-5)
    assert body["normalized"] == pytest.approx(expected_norm, abs=1e-5)


def test_model_is_loaded_once_and_reloaded_when_the_active_version_changes(
    client, labelled_project, tiny_model_dirs, admin_token, admin_user
):
    # given v1 live and scored twice
    make_version(labelled_project, tiny_model_dirs[0], number=1, active=True)
    v2 = make_version(labelled_project, tiny_model_dirs[1], number=2, active=False)
    first = _score(client, labelled_project.slug, admin_token, {"items": ITEMS}).json()
    again = _score(client, labelled_project.slug, admin_token, {"items": ITEMS}).json()
    loads = scoring.scorer_cache.loads
    assert first == again and first["version"] == 1
    # when v2 is promoted
    services.model_version_activate(version=v2, user=admin_user)
    after = _score(client, labelled_project.slug, admin_token, {"items": ITEMS}).json()
    # then the next request scores with v2, loading it once
    assert after["version"] == 2 and after["raw"] != first["raw"]
    assert scoring.scorer_cache.loads == loads + 1
    _score(client, labelled_project.slug, admin_token, {"items": ITEMS})
    assert scoring.scorer_cache.loads == loads + 1


def test_no_active_model_is_a_clear_409(client, labelled_project, admin_token):
    response = _score(client, labelled_project.slug, admin_token, {"items": ITEMS})
    assert response.status_code == 409 and "no active model" in response.json()["detail"]


@pytest.mark.parametrize(
    "setting, value, payload, message",
    [
        ("RM_SCORE_MAX_ITEMS", 2, {"items": ITEMS}, "Too many items: 3; at most 2"),
        ("RM_SCORE_MAX_CHARS", 50, {"items": ITEMS}, "Too much text"),
        ("DATA_UPLOAD_MAX_MEMORY_SIZE", 100, {"items": ITEMS}, "Request body over 100 bytes"),
    ],
)
def test_requests_over_a_cap_get_413(
    client, labelled_project, tiny_model_dirs, admin_token, settings, setting, value, payload, message
):
    # given an active model and a cap below this request
    make_version(labelled_project, tiny_model_dirs[0])
    setattr(settings, setting, value)
    loads = scoring.scorer_cache.loads
    # when the request is sent / then it is refused with 413 and says which cap, loading no model
    response = _score(client, labelled_project.slug, admin_token, payload)
    assert response.status_code == 413
    assert message in response.json()["detail"]
    assert scoring.scorer_cache.loads == loads


@pytest.mark.parametrize(
    "payload, message",
    [
        ("not json", "must be JSON"),
        ({"items": []}, "items"),
        ({"items": [{"prompt": "p"}]}, "items.0.response"),
        ({"items": [{"prompt": 1, "response": "r"}]}, "items.0.prompt"),
    ],
)
def test_malformed_requests_get_400_naming_the_field(
    client, labelled_project, tiny_model_dirs, admin_token, payload, message
):
    make_version(labelled_project, tiny_model_dirs[0])
    response = _score(client, labelled_project.slug, admin_token, payload)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_scoring_needs_the_score_permission(client, labelled_project, tiny_model_dirs, reviewer_user, annotator_user):
    make_version(labelled_project, tiny_model_dirs[0])
    for user in (reviewer_user, annotator_user):
        _, raw = account_services.api_token_issue(user=user, name="t")
        assert _score(client, labelled_project.slug, raw, {"items": ITEMS}).status_code == 403
    response = client.post(
        f"/api/v1/projects/{labelled_project.slug}/score", json.dumps({"items": ITEMS}), content_type="application/json"
    )
    assert response.status_code == 401


def test_revoked_token_stops_working(client, labelled_project, tiny_model_dirs, admin_user):
    make_version(labelled_project, tiny_model_dirs[0])
    token, raw = account_services.api_token_issue(user=admin_user, name="t")
    assert _score(client, labelled_project.slug, raw, {"items": ITEMS}).status_code == 200
    account_services.api_token_revoke(token_id=token.pk)
    assert _score(client, labelled_project.slug, raw, {"items": ITEMS}).status_code == 401


def test_a_live_model_whose_files_changed_is_not_loaded(
    client, labelled_project, tiny_model_dirs, admin_token, tmp_path
):
    import shutil

    # given a live version whose weights were swapped after training
    folder = shutil.copytree(tiny_model_dirs[0], tmp_path / "live")
    make_version(labelled_project, folder)
    shutil.copy(tiny_model_dirs[1] / "model.safetensors", folder / "model.safetensors")
    loads = scoring.scorer_cache.loads
    # when a client asks for scores
    response = _score(client, labelled_project.slug, admin_token, {"items": ITEMS})
    # then it gets 409 saying why, and no model was loaded
    assert response.status_code == 409
    assert "checksums" in response.json()["detail"]
    assert scoring.scorer_cache.loads == loads
