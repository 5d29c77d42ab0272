"""In a real browser: an admin clicks Retrain, watches live progress, and sees the new live version."""

from __future__ import annotations

import pytest

from rewardmodel import services
from tests.browser.conftest import log_in
from tests.rewardmodel.conftest import make_labelled_project

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def test_admin_retrains_and_watches_progress(live_server, page, celery_worker, admin_user):
    # given a project whose run takes about ten seconds (15 epochs took 2.5 s:
    # a page that loaded after the run had ended never saw the bar move), and
    # an admin on its runs page
    project = make_labelled_project()
    services.retrain_policy_update(project=project, train_config={"epochs": 300})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    log_in(page, live_server, admin_user.username, "pw-" + admin_user.username)
    page.goto(f"{live_server.url}/p/{project.slug}/runs/")
    # when they click "Retrain now"
    page.click("[data-testid=retrain]")
    # then the run page's progress bar moves on its own (HTMX polling), without reloads
    page.wait_for_url("**/runs/*/")
    page.wait_for_function(
        "() => { const b = document.querySelector('[data-testid=run-progress-bar]');"
        " return b && b.value > 0.05 && b.value < 1; }",
        timeout=60_000,
    )
    # and the page ends on a succeeded run with its metrics and the promotion note
    page.wait_for_selector("[data-testid=run-status]:text('Succeeded')", timeout=120_000)
    assert "Promoted: first version" in page.inner_text("[data-testid=promotion-note]")
    assert page.is_visible("[data-testid=run-metrics]")
    # and the runs page lists the new version as live
    page.click("[data-testid=project-runs]")
    assert page.inner_text("[data-testid=active-version]") == "live"
    assert errors == []  # no CSP violations or script errors
