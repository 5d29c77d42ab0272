"""Every URL x method x role gets the expected status.

Roles: anonymous, a user with no role, an annotator (member of the
project), a reviewer and an admin. Each row names a URL, a method and the
status each role must get. A new page gets a new row here.
"""

import pytest

from accounts import services as account_services
from labeling import services

ANON, NOROLE, ANNOT, REVIEW, ADMIN = "anonymous", "no_role", "annotator", "reviewer", "admin"
LOGIN = "login"  # a redirect to the login page


# A valid project form (labeling.forms.ProjectForm and the retrain policy's section).
PROJECT_FORM = {
    "slug": "matrix",
    "name": "Matrix",
    "overlap_target": "3",
    "test_percent": "20",
    "policy-min_new_votes": "50",
    "policy-promotion_delta": "0.01",
    "policy-label_model": "majority",
}


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
    row("get", "/favicon.ico", 301, 301, 301, 301, 301),
    # undo and history: annotators (and admins, who may label); nothing to undo here is a 409
    row("post", "/p/{slug}/label/undo", LOGIN, 403, 409, 403, 409),
    row("get", "/p/{slug}/history/", LOGIN, 403, 200, 403, 200),
    row("post", "/p/{slug}/history/{bob_vote}/change", LOGIN, 403, 302, 403, 302, {"choice": "left"}),
    # project setup: admins only
    row("get", "/projects/new", LOGIN, 403, 403, 403, 200),
    row("post", "/projects/new", LOGIN, 403, 403, 403, 302, PROJECT_FORM),
    row("post", "/projects/markdown-preview", LOGIN, 403, 403, 403, 200, {"instructions": "*hi*"}),
    row("get", "/p/{slug}/settings/", LOGIN, 403, 403, 403, 200),
    row("post", "/p/{slug}/settings/", LOGIN, 403, 403, 403, 302, PROJECT_FORM),
    row("get", "/p/{slug}/members/", LOGIN, 403, 403, 403, 200),
    row("post", "/p/{slug}/members/", LOGIN, 403, 403, 403, 302, {"names": "bob"}),
    row("post", "/p/{slug}/members/{bob_id}/remove", LOGIN, 403, 403, 403, 302),
    # reinstating a paused annotator: admins (bob is not paused: a message, back to the members)
    row("post", "/p/{slug}/members/{bob_id}/reinstate", LOGIN, 403, 403, 403, 302, {"reason": "ok"}),
    # API
    row("get", "/api/v1/projects", 401, 200, 200, 200, 200),
    row("get", "/api/v1/projects/{slug}/next", 401, 403, 200, 403, 200),
    row("post", "/api/v1/assignments/{assignment}/vote", 401, 403, 201, 403, 409, {"choice": "left"}),
    row("post", "/api/v1/assignments/{assignment}/vote-and-next", 401, 403, 201, 403, 409, {"choice": "left"}),
    row("post", "/api/v1/assignments/{assignment}/skip", 401, 403, 204, 403, 409),
    row("delete", "/api/v1/assignments/{assignment}/vote", 401, 403, 409, 403, 409),  # the lease holds no vote
    row("post", "/api/v1/projects", 401, 403, 403, 403, 201, {"slug": "matrix", "name": "Matrix"}),
    row("post", "/api/v1/projects/{slug}/members", 401, 403, 403, 403, 200, {"usernames": ["bob"]}),
    row("delete", "/api/v1/projects/{slug}/members/bob", 401, 403, 403, 403, 204),
    row("post", "/api/v1/projects/{slug}/annotators/bob/reinstate", 401, 403, 403, 403, 409, {"reason": "ok"}),
    row("get", "/api/v1/openapi.json", 200, 200, 200, 200, 200),  # the schema is public
    # import and export: admins only
    row("get", "/p/{slug}/import/", LOGIN, 403, 403, 403, 200),
    row("get", "/p/{slug}/export/", LOGIN, 403, 403, 403, 200),
    row(
        "get",
        "/p/{slug}/export/download",
        LOGIN,
        403,
        403,
        403,
        200,
        {"format": "pairwise", "split": "all", "file_type": "jsonl"},
    ),
    row("get", "/imports/{job}/", LOGIN, 403, 403, 403, 200),
    row("get", "/imports/{job}/progress", LOGIN, 403, 403, 403, 200),
    row("post", "/imports/{job}/retry", LOGIN, 403, 403, 403, 409),  # it was not refused for invalid rows
    # dashboard: reviewers and admins
    row("get", "/p/{slug}/dashboard/", LOGIN, 403, 403, 200, 200),
    row("get", "/p/{slug}/dashboard/annotators/", LOGIN, 403, 403, 200, 200),
    row("get", "/p/{slug}/dashboard/versions.csv", LOGIN, 403, 403, 200, 200),
    row("get", "/api/v1/projects/{slug}/metrics", 401, 403, 403, 200, 200),
    # runs and versions: reviewers read, admins act
    row("get", "/p/{slug}/runs/", LOGIN, 403, 403, 200, 200),
    row("get", "/p/{slug}/runs/table", LOGIN, 403, 403, 200, 200),
    row("post", "/p/{slug}/runs/start", LOGIN, 403, 403, 403, 302),
    row("post", "/p/{slug}/runs/resume", LOGIN, 403, 403, 403, 302),  # not paused: a message, back to the runs
    row("get", "/runs/{run}/", LOGIN, 403, 403, 200, 200),
    row("get", "/runs/{run}/progress", LOGIN, 403, 403, 200, 200),
    row("post", "/runs/{run}/cancel", LOGIN, 403, 403, 403, 302),
    row("post", "/versions/{version}/activate", LOGIN, 403, 403, 403, 302),
    row("get", "/api/v1/projects/{slug}/runs", 401, 403, 403, 200, 200),
    row("post", "/api/v1/projects/{slug}/runs", 401, 403, 403, 403, 409),  # one is running: "already running"
    row("get", "/api/v1/runs/{run}", 401, 403, 403, 200, 200),
    row("post", "/api/v1/runs/{run}/cancel", 401, 403, 403, 403, 200),
    row("get", "/api/v1/projects/{slug}/versions", 401, 403, 403, 200, 200),
    row("post", "/api/v1/versions/{version}/activate", 401, 403, 403, 403, 409),  # its files are missing: refused
    row(
        "post", "/api/v1/projects/{slug}/score", 401, 403, 403, 403, 409, {"items": [{"prompt": "p", "response": "r"}]}
    ),
    # API tokens: everyone issues and revokes their own; a token for someone else is an admin's action
    row("get", "/tokens/", LOGIN, 200, 200, 200, 200),
    row("post", "/tokens/issue", LOGIN, 200, 200, 200, 200, {"name": "mine"}),
    row("post", "/tokens/issue-for-user", LOGIN, 403, 403, 403, 200, {"name": "ci", "user": "{admin_id}"}),
    row("post", "/tokens/{token}/revoke", LOGIN, 404, 404, 404, 302),  # the admin's token
]


@pytest.fixture
def objects(project, pairs, admin_user):
    """One of everything a URL can name: a running run, a stored version, an import job, a token,
    a member other than the annotator (bob) and a vote of his."""
    from labeling.models import ImportJob
    from rewardmodel.models import ModelVersion, TrainingRun

    done = TrainingRun.objects.create(
        project=project, trigger="admin", status="succeeded", metrics={"held_out_accuracy": 0.7}
    )
    finite = {"held_out_accuracy": 0.7, "eval_loss": 0.6, "reward_mean": 0.0, "reward_std": 1.0}
    version = ModelVersion.objects.create(
        project=project, run=done, number=1, artifact_dir="/nonexistent", metrics=finite
    )
    running = TrainingRun.objects.create(project=project, trigger="admin", status="running")
    job = ImportJob.objects.create(
        project=project, requested_by=admin_user, file_name="x.jsonl", upload_path="/nonexistent"
    )
    token, _ = account_services.api_token_issue(user=admin_user, name="matrix")
    bob = project.members.get(username="bob")
    lease = services.assignment_next(project=project, user=bob)
    bob_vote, _ = services.vote_submit(assignment_id=lease.pk, user=bob, choice="left")
    return {
        "run": running.pk,
        "version": version.pk,
        "job": job.pk,
        "token": token.pk,
        "admin_id": admin_user.pk,
        "bob_id": bob.pk,
        "bob_vote": bob_vote.pk,
    }


@pytest.fixture
def users(annotator_user, reviewer_user, admin_user, no_role_user):
    return {ANNOT: annotator_user, REVIEW: reviewer_user, ADMIN: admin_user, NOROLE: no_role_user}


@pytest.mark.parametrize("method, url, expected, data", MATRIX, ids=[f"{m} {u}" for m, u, _, _ in MATRIX])
@pytest.mark.parametrize("role", [ANON, NOROLE, ANNOT, REVIEW, ADMIN])
def test_role_matrix(client, users, objects, project, pairs, method, url, expected, data, role):
    # given a live lease held by the annotator
    assignment = services.assignment_next(project=project, user=users[ANNOT])
    path = url.format(slug=project.slug, assignment=assignment.pk, **objects)
    data = {k: (v.format(**objects) if isinstance(v, str) else v) for k, v in (data or {}).items()}
    if role != ANON:
        client.force_login(users[role])
    # when
    if method in ("post", "delete") and path.startswith("/api/"):
        response = getattr(client, method)(path, data=data or {}, content_type="application/json")
    elif method == "post" and "/runs/start" in path:
        # the run must not start while another is running: cancel that one first
        from rewardmodel.models import TrainingRun

        TrainingRun.objects.filter(status="running").update(status="cancelled")
        response = client.post(path, data=data or {})
    else:
        response = getattr(client, method)(path, data=data or {})
    # then
    want = expected[role]
    if want == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), response
    else:
        assert response.status_code == want, (role, path, response.status_code, response.content[:200])
