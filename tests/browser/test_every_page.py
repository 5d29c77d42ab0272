"""Every main page, as each role that may open it, in a real browser: no console error, no script error,
no failed request, no HTTP error (a missing favicon included), and no sideways scroll on a 390 px phone.

A new page is one row in PAGES: its URL (with {names} from the `world` fixture) and the roles that may open it.
"""

from __future__ import annotations

import pytest

from accounts import services as account_services
from labeling import services
from labeling.models import ImportJob
from rewardmodel.models import TrainingRun
from tests.browser.conftest import Problems, log_in
from tests.conftest import make_records
from tests.dashboard.dashboard_data import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANON, NOROLE, ANNOT, REVIEW, ADMIN = "anonymous", "no_role", "annotator", "reviewer", "admin"
LOGINS = {NOROLE: "nora", ANNOT: "alice", REVIEW: "rita", ADMIN: "adam"}
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
FITS = "width => document.documentElement.scrollWidth <= width"

PAGES = [
    ("/accounts/login/", {ANON}),
    ("/", {NOROLE, ANNOT, REVIEW, ADMIN}),
    ("/p/{slug}/label/", {ANNOT, ADMIN}),
    ("/p/{slug}/history/", {ANNOT, ADMIN}),
    ("/p/{slug}/dashboard/", {REVIEW, ADMIN}),
    ("/p/{slug}/runs/", {REVIEW, ADMIN}),
    ("/runs/{run}/", {REVIEW, ADMIN}),
    ("/projects/new", {ADMIN}),
    ("/p/{slug}/settings/", {ADMIN}),
    ("/p/{slug}/members/", {ADMIN}),
    ("/p/{slug}/import/", {ADMIN}),
    ("/imports/{job}/", {ADMIN}),
    ("/p/{slug}/export/", {ADMIN}),
    ("/tokens/", {ADMIN}),
]


@pytest.fixture
def world(project, django_user_model, annotator_user, reviewer_user, admin_user, no_role_user):
    """A project with votes, versions, a run and an import; each role's user; a vote of alice's."""
    populate(project, django_user_model)
    services.pairs_import_batch(project=project, records=make_records(4, prefix="open"), shuffle_sides=False)
    lease = services.assignment_next(project=project, user=annotator_user)
    services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="left")
    run = TrainingRun.objects.filter(project=project).first()
    job = ImportJob.objects.create(
        project=project, requested_by=admin_user, file_name="x.jsonl", upload_path="/nonexistent", status="succeeded"
    )
    account_services.api_token_issue(user=admin_user, name="ci")
    return {"slug": project.slug, "run": run.pk, "job": job.pk}


@pytest.mark.parametrize("role", [ANON, NOROLE, ANNOT, REVIEW, ADMIN])
def test_every_main_page_loads_cleanly(live_server, page, world, role):
    # given a user of this role, logged in through the form
    problems = Problems().watch(page)
    page.set_viewport_size(DESKTOP)
    if role != ANON:
        log_in(page, live_server, LOGINS[role], "pw-" + LOGINS[role])
    pages = [url.format(**world) for url, roles in PAGES if role in roles]
    assert pages
    for url in pages:
        # when they open the page and it settles (HTMX loads, charts, polling)
        response = page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        # then it answered 200 and nothing in it failed
        assert response.status == 200, (role, url, response.status)
        assert problems.list == [], (role, url, problems.list)
        # and narrowed to a phone's width, it is no wider than the screen once it has reflowed
        # (charts resize on the next frames)
        page.set_viewport_size(PHONE)
        fits = page.wait_for_function(FITS, arg=PHONE["width"], timeout=5_000, polling="raf").json_value()
        assert fits, (role, url, page.evaluate("document.documentElement.scrollWidth"))
        page.set_viewport_size(DESKTOP)
