"""The JSON labeling API: token or session auth, raw text out, votes in."""

import json

import pytest
from django.test import Client

from accounts import services as account_services
from labeling import services
from labeling.models import Assignment, Vote
from tests.conftest import make_records

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def token(annotator_user):
    _, raw = account_services.api_token_issue(user=annotator_user, name="cli")
    return raw


def api(client, method, path, token=None, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is not None:
        return getattr(client, method)(path, data=json.dumps(body), content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


def test_next_returns_raw_text_and_vote_maps_sides(client, project, pairs, token):
    # given a pair whose response contains markdown
    response = api(client, "get", f"/api/v1/projects/{project.slug}/next", token)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"assignment_id", "prompt", "left", "right"}
    assert "<p>" not in body["left"]  # raw, not rendered
    # when the client votes "left"
    vote = api(client, "post", f"/api/v1/assignments/{body['assignment_id']}/vote", token, {"choice": "left"})
    # then the stored choice is whichever response was on the left
    assert vote.status_code == 201
    stored = Vote.objects.get()
    left_text = stored.pair.response_a if stored.shown_left == "a" else stored.pair.response_b
    assert left_text == body["left"]
    assert stored.choice == stored.shown_left


def test_retrying_a_vote_returns_200_and_the_same_vote(client, project, pairs, token):
    assignment_id = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()["assignment_id"]
    first = api(client, "post", f"/api/v1/assignments/{assignment_id}/vote", token, {"choice": "tie"})
    again = api(client, "post", f"/api/v1/assignments/{assignment_id}/vote", token, {"choice": "tie"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["vote_id"] == again.json()["vote_id"]
    assert Vote.objects.count() == 1


def test_empty_queue_is_204(client, project, token):
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", token).status_code == 204


def test_vote_on_a_foreign_assignment_is_409(client, project, pairs, token, annotator_user2):
    theirs = services.assignment_next(project=project, user=annotator_user2)
    response = api(client, "post", f"/api/v1/assignments/{theirs.pk}/vote", token, {"choice": "left"})
    assert response.status_code == 409
    assert "not assigned to you" in response.json()["detail"]
    assert Vote.objects.count() == 0


def test_bad_choice_is_422_and_writes_nothing(client, project, pairs, token):
    assignment_id = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()["assignment_id"]
    response = api(client, "post", f"/api/v1/assignments/{assignment_id}/vote", token, {"choice": "a"})
    assert response.status_code == 422
    assert Vote.objects.count() == 0


def test_no_credentials_is_401_and_a_revoked_token_too(client, project, pairs, annotator_user):
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next").status_code == 401
    token_obj, raw = account_services.api_token_issue(user=annotator_user, name="old")
    account_services.api_token_revoke(token_id=token_obj.pk)
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", raw).status_code == 401


def test_session_auth_needs_csrf_on_post(project, pairs, annotator_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator_user)
    assignment_id = client.get(f"/api/v1/projects/{project.slug}/next").json()["assignment_id"]
    url = f"/api/v1/assignments/{assignment_id}/vote"
    refused = client.post(url, data=json.dumps({"choice": "left"}), content_type="application/json")
    assert refused.status_code == 403
    assert Vote.objects.count() == 0
    client.get("/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    ok = client.post(url, data=json.dumps({"choice": "left"}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 201


def test_reviewer_cannot_lease_pairs(client, project, pairs, reviewer_user):
    _, raw = account_services.api_token_issue(user=reviewer_user, name="r")
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", raw).status_code == 403


def test_openapi_schema_is_served(client, annotator_user):
    client.force_login(annotator_user)
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/projects/{slug}/next" in schema["paths"]
    assert "/api/v1/assignments/{assignment_id}/vote" in schema["paths"]
    assert "/api/v1/assignments/{assignment_id}/vote-and-next" in schema["paths"]


def test_token_permissions_are_read_fresh_on_every_request(client, project, pairs, token, annotator_user):
    # given an annotator whose token works
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", token).status_code == 200
    # when an admin takes the annotator role away
    annotator_user.groups.clear()
    # then the very next request is refused: the token query loads permissions
    # per request, there is no cache that outlives it
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", token).status_code == 403


def test_token_request_loads_user_and_permissions_in_one_query(client, project, pairs, token):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "sqlite":
        pytest.skip("on PostgreSQL the labeling loop's SQL binds server-side, past Django's query log")
    with CaptureQueriesContext(connection) as ctx:
        assert api(client, "get", f"/api/v1/projects/{project.slug}/next", token).status_code == 200
    permission_queries = [q["sql"] for q in ctx.captured_queries if "auth_permission" in q["sql"]]
    assert len(permission_queries) == 1 and "labeling_apitoken" in permission_queries[0]


def test_a_direct_user_permission_counts_through_a_token(client, project, pairs, annotator_user):
    # given a user outside every group, granted label_pairs directly
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("direct", password=None)
    user.user_permissions.add(Permission.objects.get(codename="label_pairs"))
    project.members.add(user)
    _, raw = account_services.api_token_issue(user=user, name="cli")
    # then the token may lease pairs
    assert api(client, "get", f"/api/v1/projects/{project.slug}/next", raw).status_code == 200


# --------------------------------------------------------------------------- #
# vote-and-next: one request per pair, as the labeling page does
# --------------------------------------------------------------------------- #
def vote_and_next(client, token, assignment_id, choice="left"):
    return api(client, "post", f"/api/v1/assignments/{assignment_id}/vote-and-next", token, {"choice": choice})


def test_vote_and_next_stores_the_vote_and_leases_the_next_pair(client, project, pairs, token, annotator_user):
    # given a leased pair
    first = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()
    # when the client votes "right" and asks for the next pair in the same request
    response = vote_and_next(client, token, first["assignment_id"], "right")
    # then the vote is stored in pair terms, as by the plain vote endpoint
    assert response.status_code == 201
    body = response.json()
    stored = Vote.objects.get()
    assert body["vote"] == {
        "vote_id": stored.pk,
        "choice": stored.choice,
        "shown_left": stored.shown_left,
        "created": True,
    }
    right_text = stored.pair.response_b if stored.shown_left == "a" else stored.pair.response_a
    assert right_text == first["right"] and stored.choice != stored.shown_left
    # and the next pair is another one, leased to this annotator, in raw text
    following = body["next"]
    live = Assignment.objects.get(annotator__user=annotator_user, state=Assignment.State.LIVE)
    assert following["assignment_id"] == live.pk and live.pair_id != stored.pair_id
    texts = {"a": live.pair.response_a, "b": live.pair.response_b}
    assert (following["left"], following["right"]) == (texts[live.left], texts[live.right])
    assert following["prompt"] == live.pair.prompt
    # and the client can go on with it
    assert vote_and_next(client, token, following["assignment_id"]).status_code == 201
    assert Vote.objects.count() == 2


def test_retrying_vote_and_next_gives_one_vote_and_the_same_next_pair(client, project, pairs, token):
    assignment_id = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()["assignment_id"]
    first = vote_and_next(client, token, assignment_id, "tie")
    again = vote_and_next(client, token, assignment_id, "tie")  # the first response was lost
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["vote"]["vote_id"] == again.json()["vote"]["vote_id"]
    assert again.json()["vote"]["created"] is False
    assert first.json()["next"]["assignment_id"] == again.json()["next"]["assignment_id"]
    assert Vote.objects.count() == 1
    assert Assignment.objects.filter(state=Assignment.State.LIVE).count() == 1


def test_a_refused_vote_and_next_writes_and_leases_nothing(client, project, pairs, token, annotator_user2):
    # given someone else's lease
    theirs = services.assignment_next(project=project, user=annotator_user2)
    leases_before = Assignment.objects.count()
    # when this annotator votes on it and asks for more
    response = vote_and_next(client, token, theirs.pk)
    # then it is refused as the plain vote is, and no pair is leased to them either
    assert response.status_code == 409
    assert "not assigned to you" in response.json()["detail"]
    assert Vote.objects.count() == 0
    assert Assignment.objects.count() == leases_before


def test_vote_and_next_on_the_last_pair_returns_next_null(client, project, token):
    # given a project with one pair left for this annotator
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    assignment_id = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()["assignment_id"]
    # when they vote on it
    response = vote_and_next(client, token, assignment_id)
    # then the vote is stored and there is nothing next
    assert response.status_code == 201
    assert response.json()["next"] is None
    assert Vote.objects.count() == 1


def test_vote_and_next_after_leaving_the_project_keeps_the_vote_and_leases_nothing(
    client, project, pairs, token, annotator_user
):
    # given a lease, and then the annotator taken off the project
    assignment_id = api(client, "get", f"/api/v1/projects/{project.slug}/next", token).json()["assignment_id"]
    project.members.remove(annotator_user)
    # when they vote on the lease they hold
    response = vote_and_next(client, token, assignment_id)
    # then the vote on work handed to them stands, and no new pair is leased
    assert response.status_code == 201
    assert response.json()["next"] is None
    assert Vote.objects.count() == 1
    assert not Assignment.objects.filter(state=Assignment.State.LIVE).exists()
