"""A reviewer opens the dashboard in a real browser and the charts draw; an annotator is refused."""

import os

import pytest

from tests.browser.conftest import Problems, log_in
from tests.dashboard.dashboard_data import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANVASES = [
    "chart-versions",
    "chart-learning-curve",
    "chart-calibration",
    "chart-length-buckets",
    "chart-agreement",
    "chart-agreement-chance",
    "chart-votes-per-pair",
]

# Share of a canvas's pixels that are painted and not the (transparent or
# white) background; axes alone paint a little, data far more.
PAINTED = """id => {
  const c = document.getElementById(id);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 0 && !(r > 245 && g > 245 && b > 245)) painted++;
  }
  return {painted, total: data.length / 4, colored: (() => {
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 200 && Math.abs(data[i] - data[i + 2]) > 60) n++;
    return n; })()};
}"""


def test_reviewer_sees_charts_drawn(live_server, page, project, django_user_model, reviewer_user):
    # given a project with votes and two versions, and a reviewer logged in through the form
    populate(project, django_user_model)
    errors = []
    # (the browser's own favicon request 404s; a missing script would leave the canvases blank below)
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text) if msg.type == "error" and "Failed to load resource" not in msg.text else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "rita", "pw-rita")
    # when they open the dashboard
    response = page.goto(f"{live_server.url}/p/{project.slug}/dashboard/")
    assert response.status == 200
    page.wait_for_selector("body[data-charts-drawn='1']")
    # then every chart canvas holds drawn, coloured data, not a blank canvas
    for canvas in CANVASES:
        stats = page.evaluate(PAINTED, canvas)
        assert stats["painted"] > 0.005 * stats["total"], (canvas, stats)
        assert stats["colored"] > 50, (canvas, stats)  # the blue/green/orange series, not just grey axes
    # and the page raised no script or CSP error
    assert errors == []
    # and the figures and flags are on the page
    assert page.locator("#stat-krippendorff-alpha .value").inner_text() not in ("", "–")
    assert page.locator(".flag[data-code='overfitting']").count() == 1
    # and the always-left annotator leads the table, flagged
    assert page.locator("#annotator-table tbody tr").first.inner_text().startswith("lefty")
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        page.set_viewport_size({"width": 1300, "height": 900})
        page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)


def test_annotator_gets_403(live_server, page, project, annotator_user):
    log_in(page, live_server, "alice", "pw-alice")
    response = page.goto(f"{live_server.url}/p/{project.slug}/dashboard/")
    assert response.status == 403


def test_reviewer_sees_the_empty_state_before_any_model(live_server, page, project, reviewer_user):
    # given a project with pairs but no votes and no model
    from labeling import services
    from tests.conftest import make_records

    services.pairs_import_batch(project=project, records=make_records(3), shuffle_sides=False)
    problems = Problems().watch(page)
    log_in(page, live_server, "rita", "pw-rita")
    # when the reviewer opens the dashboard
    page.goto(f"{live_server.url}/p/{project.slug}/dashboard/")
    # then it says there is no model yet and where one comes from, with no empty axes
    assert "No model yet." in page.inner_text("[data-testid=no-model]")
    assert "No votes yet." in page.inner_text("[data-testid=no-votes]")
    assert page.locator("canvas").count() == 0
    # and the link leads to the runs page
    page.click("[data-testid=runs-link]")
    page.wait_for_url(f"**/p/{project.slug}/runs/")
    assert "No runs yet." in page.content()
    assert problems.list == []


def test_dashboard_fits_a_phone_screen(live_server, page, project, django_user_model, reviewer_user):
    # given a full dashboard, on a 390 px wide screen
    populate(project, django_user_model)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "rita", "pw-rita")
    page.goto(f"{live_server.url}/p/{project.slug}/dashboard/")
    page.wait_for_selector("body[data-charts-drawn='1']")
    # then nothing makes the page wider than the screen (wide tables scroll inside their box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
