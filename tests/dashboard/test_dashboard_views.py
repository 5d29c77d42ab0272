"""The dashboard page, its annotator pages and CSV downloads: who sees what, and what it shows."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from dashboard.models import AnnotatorStats
from tests.dashboard.dashboard_data import populate


@pytest.fixture
def filled(project, django_user_model):
    return populate(project, django_user_model)


def test_reviewer_sees_figures_flags_and_sample_sizes(client, project, filled, reviewer_user):
    # given a reviewer, when they open the dashboard
    client.force_login(reviewer_user)
    response = client.get(reverse("dashboard", args=[project.slug]))
    # then it renders every section with the figures' sample sizes
    assert response.status_code == 200
    html = response.content.decode()
    for anchor in (
        'id="stat-percent-agreement"',
        'id="stat-fleiss-kappa"',
        'id="stat-krippendorff-alpha"',
        'id="stat-model-vs-human"',
        'id="stat-human-ceiling"',
        'id="chart-versions"',
        'id="chart-learning-curve"',
        'id="chart-calibration"',
        'id="chart-length-buckets"',
        'id="dashboard-data"',
        'id="annotator-table"',
    ):
        assert anchor in html
    payload = response.context["d"]
    assert f"n = {payload['fleiss_kappa']['n']}" in html
    assert payload["model_vs_ceiling"]["text"] in html
    # and the red flags the data should raise: overfitting (0.95 vs 0.71), length bias (0.9 vs 0.6)
    codes = {f["code"] for f in payload["red_flags"]}
    assert {"overfitting", "length_bias"} <= codes
    assert 'data-code="overfitting"' in html
    # and the always-left annotator is flagged and listed first
    assert payload["annotators"]["rows"][0]["annotator"] == "lefty"
    assert "position_bias" in payload["annotators"]["rows"][0]["flags"]
    # and no inline script: the chart data is a JSON block, the code a static file
    assert "<script>" not in html and 'src="/static/js/dashboard.js"' in html


@pytest.mark.parametrize("who,status", [("annotator_user", 403), ("no_role_user", 403), ("admin_user", 200)])
def test_dashboard_access_by_role(client, project, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("dashboard", args=[project.slug])).status_code == status
    assert client.get(reverse("dashboard-csv", args=[project.slug, "versions"])).status_code == status
    assert client.get(reverse("dashboard-annotators", args=[project.slug])).status_code == status


def test_anonymous_is_sent_to_login(client, project):
    response = client.get(reverse("dashboard", args=[project.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_project_and_chart_are_404(client, project, reviewer_user):
    client.force_login(reviewer_user)
    assert client.get(reverse("dashboard", args=["nope"])).status_code == 404
    assert client.get(reverse("dashboard-csv", args=[project.slug, "nope"])).status_code == 404


def test_empty_project_renders_without_figures(client, project, reviewer_user):
    # given a project with no votes and no model, when a reviewer opens it
    client.force_login(reviewer_user)
    response = client.get(reverse("dashboard", args=[project.slug]))
    # then it says so instead of failing: no votes, no model, and where the model comes from
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="no-votes"' in html and "No votes yet." in html
    assert 'data-testid="no-model"' in html and "No model yet." in html
    assert f'href="/p/{project.slug}/runs/" data-testid="runs-link"' in html
    # and draws no empty axes
    assert "<canvas" not in html
    assert "0 annotators" in html and "1 annotators" not in html


def test_small_samples_are_labelled_and_every_chart_has_a_table(client, project, reviewer_user, annotator_user):
    # given five pairs where two annotators agree every time: a bootstrap interval of [100%, 100%]
    from labeling import services
    from tests.conftest import make_records

    services.pairs_import_batch(project=project, records=make_records(5, votes=2), shuffle_sides=False)
    client.force_login(reviewer_user)
    html = client.get(reverse("dashboard", args=[project.slug])).content.decode()
    # then the figures say small sample instead of an interval
    agreement = html[html.index('id="stat-percent-agreement"') : html.index('id="stat-fleiss-kappa"')]
    assert "small sample" in agreement and "[100.0%, 100.0%]" not in agreement
    # and each drawn chart has a text alternative: a label and its numbers as a table
    assert html.count('role="img"') == html.count("<canvas") == 3  # agreement, chance-corrected, votes per pair
    assert '<table class="grid compact" data-chart="votes_per_pair">' in html
    assert "<td>percent agreement</td>" in html


@pytest.mark.parametrize(
    "chart",
    ["versions", "learning_curve", "calibration", "length_buckets", "agreement", "votes_per_pair", "annotators"],
)
def test_each_chart_has_a_csv_of_its_data(client, project, filled, reviewer_user, chart):
    client.force_login(reviewer_user)
    response = client.get(reverse("dashboard-csv", args=[project.slug, chart]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert len(rows) >= 2  # a header and data
    if chart == "versions":
        assert [r[0] for r in rows[1:]] == ["1", "2"]
    if chart == "annotators":
        assert len(rows) - 1 == AnnotatorStats.objects.filter(project=project).count()


def test_csv_neutralises_formula_names(client, project, reviewer_user, django_user_model):
    # given an annotator whose name a spreadsheet would run as a formula
    from labeling.models import Annotator
    from tests.conftest import make_user

    user = make_user(django_user_model, "+cmd", None)
    AnnotatorStats.objects.create(project=project, annotator=Annotator.objects.create(user=user), votes=1)
    client.force_login(reviewer_user)
    # when the annotators CSV is downloaded
    response = client.get(reverse("dashboard-csv", args=[project.slug, "annotators"]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    # then the cell is text, and numbers stay numbers
    assert rows[1][0] == "'+cmd"
    assert rows[1][1] == "1"


def test_annotator_table_pages(client, project, filled, reviewer_user, django_user_model):
    # given more annotators than one page holds
    from labeling.models import Annotator

    extra = Annotator.objects.bulk_create([Annotator(external_id=f"bulk{i}") for i in range(60)])
    AnnotatorStats.objects.bulk_create([AnnotatorStats(project=project, annotator=a, votes=1) for a in extra])
    client.force_login(reviewer_user)
    # when the second page is asked for, as HTMX does
    response = client.get(reverse("dashboard-annotators", args=[project.slug]) + "?page=2", HTTP_HX_REQUEST="true")
    # then it holds the rest and states the total
    page = response.context["annotators"]
    total = AnnotatorStats.objects.filter(project=project).count()
    assert (page["page"], page["pages"], page["total"]) == (2, 2, total)
    assert len(page["rows"]) == total - 50
    assert f"{total} annotators" in response.content.decode()


def test_every_page_counts_the_votes_cast_just_before_it(client, project, pairs, annotator_user, reviewer_user):
    # Live votes reach the aggregates when folded in; each dashboard read folds first.
    from labeling import services

    def vote_once():
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left", latency_ms=3000)

    def annotators_csv_votes():
        body = b"".join(client.get(reverse("dashboard-csv", args=[project.slug, "annotators"])).streaming_content)
        header, row = list(csv.reader(io.StringIO(body.decode())))
        return int(row[header.index("votes")])

    client.force_login(reviewer_user)
    # given a live vote no fold has counted, when a reviewer opens the dashboard, then it counts it
    vote_once()
    assert client.get(reverse("dashboard", args=[project.slug])).context["d"]["sample"]["votes"] == 1
    # and so do the metrics API, the annotators CSV and the annotators table, each after one more vote
    vote_once()
    assert client.get(f"/api/v1/projects/{project.slug}/metrics").json()["sample"]["votes"] == 2
    vote_once()
    assert annotators_csv_votes() == 3
    vote_once()
    table = client.get(reverse("dashboard-annotators", args=[project.slug])).context["annotators"]
    assert table["rows"][0]["votes"] == 4
