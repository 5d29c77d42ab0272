"""The JSON API for project setup (admins) and undo (annotators): what each answers, and who may."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from labeling import services
from labeling.models import Assignment, Pair, Project, Vote, VoteChange
from tests.conftest import make_user

# Undo runs the labeling loop's SQL, which differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


def api(client, method, path, user=None, body=None):
    headers = {}
    if user is not None:
        _, raw = account_services.api_token_issue(user=user, name="t")
        headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    if body is not None:
        return getattr(client, method)(path, data=json.dumps(body), content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


# --------------------------------------------------------------------------- #
# POST /projects
# --------------------------------------------------------------------------- #
def test_admin_creates_a_project(client, admin_user):
    # when an admin posts a new project
    body = {"slug": "hh", "name": "HH", "instructions": "Pick the *kinder* one.", "overlap": 5, "test_percent": 10}
    response = api(client, "post", "/api/v1/projects", admin_user, body)
    # then it is stored with those settings and answered as the project list answers
    assert response.status_code == 201
    assert response.json()["slug"] == "hh" and response.json()["overlap_target"] == 5
    project = Project.objects.get(slug="hh")
    assert (project.name, project.instructions, project.overlap_target, project.test_percent) == (
        "HH",
        "Pick the *kinder* one.",
        5,
        10,
    )


def test_project_defaults_and_a_taken_slug(client, admin_user):
    assert api(client, "post", "/api/v1/projects", admin_user, {"slug": "p1", "name": "P"}).status_code == 201
    project = Project.objects.get(slug="p1")
    assert (project.overlap_target, project.test_percent) == (3, 20)
    again = api(client, "post", "/api/v1/projects", admin_user, {"slug": "p1", "name": "Other"})
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    assert Project.objects.get(slug="p1").name == "P"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"slug": "has space", "name": "x"}, 400),
        ({"slug": "ok", "name": "x", "overlap": 0}, 422),
        ({"slug": "ok", "name": "x", "overlap": 26}, 422),
        ({"slug": "ok", "name": "x", "test_percent": 95}, 422),
        ({"name": "no slug"}, 422),
    ],
)
def test_bad_project_input_is_refused_and_writes_nothing(client, admin_user, body, status):
    response = api(client, "post", "/api/v1/projects", admin_user, body)
    assert response.status_code == status, response.content
    assert not Project.objects.exists()


@pytest.mark.parametrize("who", ["annotator_user", "reviewer_user", "no_role_user"])
def test_only_admins_create_projects(client, request, who):
    response = api(client, "post", "/api/v1/projects", request.getfixturevalue(who), {"slug": "x", "name": "x"})
    assert response.status_code == 403
    assert not Project.objects.exists()


# --------------------------------------------------------------------------- #
# Members
# --------------------------------------------------------------------------- #
def test_admin_adds_members_by_username_or_email(client, admin_user, django_user_model):
    # given a project and three users, one without a role
    project = services.project_create(slug="m", name="M")
    carol = make_user(django_user_model, "carol", "annotator", email="carol@example.org")
    make_user(django_user_model, "dave", "annotator")
    make_user(django_user_model, "nobody", None)
    # when the admin adds them, carol by email
    body = {"usernames": ["carol@EXAMPLE.org", "dave", "nobody"]}
    response = api(client, "post", f"/api/v1/projects/{project.slug}/members", admin_user, body)
    # then all three are members, and the one who cannot label is named
    assert response.status_code == 200
    assert response.json() == {
        "added": ["carol", "dave", "nobody"],
        "already_members": [],
        "cannot_label": ["nobody"],
        "members": ["carol", "dave", "nobody"],
    }
    assert carol in project.members.all()
    # and adding one again says so
    again = api(client, "post", f"/api/v1/projects/{project.slug}/members", admin_user, {"usernames": ["dave"]})
    assert again.json()["already_members"] == ["dave"] and again.json()["added"] == []


def test_one_unknown_name_adds_nobody(client, admin_user, annotator_user):
    project = services.project_create(slug="m", name="M")
    body = {"usernames": ["alice", "ghost", "ghost2@example.org"]}
    response = api(client, "post", f"/api/v1/projects/{project.slug}/members", admin_user, body)
    assert response.status_code == 400
    assert "ghost, ghost2@example.org" in response.json()["detail"]
    assert project.members.count() == 0
    empty = api(client, "post", f"/api/v1/projects/{project.slug}/members", admin_user, {"usernames": []})
    assert empty.status_code == 422


def test_removing_a_member_gives_their_lease_back_and_keeps_their_votes(client, project, pairs, admin_user):
    # given alice, a member with a vote and a live lease
    alice = project.members.get(username="alice")
    first = services.assignment_next(project=project, user=alice)
    services.vote_submit(assignment_id=first.pk, user=alice, choice="left")
    held = services.assignment_next(project=project, user=alice)
    assert Pair.objects.get(pk=held.pair_id).slots_taken == 1
    # when the admin removes her
    response = api(client, "delete", f"/api/v1/projects/{project.slug}/members/alice", admin_user)
    # then she is no member, her vote stays, and the leased pair is back in the pool
    assert response.status_code == 204
    assert not project.members.filter(pk=alice.pk).exists()
    assert Vote.objects.filter(annotator__user=alice).count() == 1
    assert not Assignment.objects.filter(pk=held.pk).exists()
    assert Pair.objects.get(pk=held.pair_id).slots_taken == 0
    # and removing her again is a 404, as is an unknown project
    assert api(client, "delete", f"/api/v1/projects/{project.slug}/members/alice", admin_user).status_code == 404
    assert api(client, "delete", "/api/v1/projects/nope/members/bob", admin_user).status_code == 404


@pytest.mark.parametrize("who", ["annotator_user", "reviewer_user"])
def test_only_admins_manage_members(client, project, request, who):
    user = request.getfixturevalue(who)
    add = api(client, "post", f"/api/v1/projects/{project.slug}/members", user, {"usernames": ["bob"]})
    remove = api(client, "delete", f"/api/v1/projects/{project.slug}/members/bob", user)
    assert (add.status_code, remove.status_code) == (403, 403)
    assert project.members.filter(username="bob").exists()


# --------------------------------------------------------------------------- #
# DELETE /assignments/{id}/vote
# --------------------------------------------------------------------------- #
def test_undo_answers_the_lease_as_next_does(client, project, pairs, annotator_user):
    # given a vote cast through vote-and-next, which leased the next pair
    lease = api(client, "get", f"/api/v1/projects/{project.slug}/next", annotator_user).json()
    body = {"choice": "right", "rationale": ""}
    voted = api(client, "post", f"/api/v1/assignments/{lease['assignment_id']}/vote-and-next", annotator_user, body)
    assert voted.status_code == 201 and voted.json()["next"] is not None
    # when the annotator undoes it
    response = api(client, "delete", f"/api/v1/assignments/{lease['assignment_id']}/vote", annotator_user)
    # then 200 with the same pair in next's shape, the same sides, and the undone choice beside it
    assert response.status_code == 200
    undone = response.json()
    assert {k: undone[k] for k in ("assignment_id", "prompt", "left", "right", "choices")} == {
        k: lease[k] for k in ("assignment_id", "prompt", "left", "right", "choices")
    }
    assert (undone["previous_choice"], undone["previous_strength"]) == ("right", None)
    assert Vote.objects.count() == 0
    # and next answers the same lease; voting on it again works
    again = api(client, "get", f"/api/v1/projects/{project.slug}/next", annotator_user).json()
    assert again["assignment_id"] == lease["assignment_id"]
    revote = api(
        client, "post", f"/api/v1/assignments/{lease['assignment_id']}/vote", annotator_user, {"choice": "tie"}
    )
    assert revote.status_code == 201


def test_undo_after_the_window_is_409(client, project, pairs, annotator_user):
    lease = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="left")
    Vote.objects.filter(pk=vote.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    response = api(client, "delete", f"/api/v1/assignments/{lease.pk}/vote", annotator_user)
    assert response.status_code == 409
    assert "10 minutes" in response.json()["detail"]
    assert Vote.objects.count() == 1 and not VoteChange.objects.exists()


def test_undo_of_a_foreign_or_unvoted_lease_is_409(client, project, pairs, annotator_user, annotator_user2):
    theirs = services.assignment_next(project=project, user=annotator_user2)
    services.vote_submit(assignment_id=theirs.pk, user=annotator_user2, choice="left")
    assert api(client, "delete", f"/api/v1/assignments/{theirs.pk}/vote", annotator_user).status_code == 409
    mine = services.assignment_next(project=project, user=annotator_user)
    assert api(client, "delete", f"/api/v1/assignments/{mine.pk}/vote", annotator_user).status_code == 409
    assert Vote.objects.count() == 1


def test_new_routes_are_in_the_openapi_schema(client, annotator_user):
    client.force_login(annotator_user)
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "post" in paths["/api/v1/projects"]
    assert "post" in paths["/api/v1/projects/{slug}/members"]
    assert "delete" in paths["/api/v1/projects/{slug}/members/{username}"]
    assert "delete" in paths["/api/v1/assignments/{assignment_id}/vote"]
