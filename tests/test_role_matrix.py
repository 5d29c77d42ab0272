"""Every URL x method x role gets the expected status.

Roles: anonymous, a user with no role, an annotator (member of the
project), a reviewer and an admin. Each row names a URL, a method and the
status each role must get. A new page gets a new row here.
"""
import pytest

from labeling import services

ANON, NOROLE, ANNOT, REVIEW, ADMIN = "anonymous", "no_role", "annotator", "reviewer", "admin"
LOGIN = "login"  # a redirect to the login page


def row(method, url, anonymous, no_role, annotator, reviewer, admin, data=None):
    return (method, url, {ANON: anonymous, NOROLE: no_role, ANNOT: annotator, REVIEW: reviewer, ADMIN: admin}, data)


MATRIX = [
    # pages
    row("get", "/", LOGIN, 200, 200, 200, 200),
    row("get", "/p/{slug}/label/", LOGIN, 403, 200, 403, 200),
    row("post", "/p/{slug}/label/{assignment}/vote", LOGIN, 403, 302, 403, 409, {"choice": "left"}),
    row("post", "/p/{slug}/label/{assignment}/skip", LOGIN, 403, 302, 403, 409),
    row("get", "/p/nope/label/", LOGIN, 403, 404, 403, 404),
    row("get", "/admin/", 302, 302, 302, 302, 200),
    row("get", "/healthz", 200, 200, 200, 200, 200),
    # API
    row("get", "/api/v1/projects", 401, 200, 200, 200, 200),
    row("get", "/api/v1/projects/{slug}/next", 401, 403, 200, 403, 200),
    row("post", "/api/v1/assignments/{assignment}/vote", 401, 403, 201, 403, 409, {"choice": "left"}),
    row("post", "/api/v1/assignments/{assignment}/skip", 401, 403, 204, 403, 409),
]


@pytest.fixture
def users(annotator_user, reviewer_user, admin_user, no_role_user):
    return {ANNOT: annotator_user, REVIEW: reviewer_user, ADMIN: admin_user, NOROLE: no_role_user}


@pytest.mark.parametrize("method, url, expected, data", MATRIX, ids=[f"{m} {u}" for m, u, _, _ in MATRIX])
@pytest.mark.parametrize("role", [ANON, NOROLE, ANNOT, REVIEW, ADMIN])
def test_role_matrix(client, users, project, pairs, method, url, expected, data, role):
    # given a live lease held by the annotator
    assignment = services.assignment_next(project=project, user=users[ANNOT])
    path = url.format(slug=project.slug, assignment=assignment.pk)
    if role != ANON:
        client.force_login(users[role])
    # when
    if method == "post" and path.startswith("/api/"):
        response = client.post(path, data=data or {}, content_type="application/json")
    else:
        response = getattr(client, method)(path, data=data or {})
    # then
    want = expected[role]
    if want == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), response
    else:
        assert response.status_code == want, (role, path, response.status_code, response.content[:200])
