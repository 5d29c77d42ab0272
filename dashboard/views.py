"""The reviewer dashboard page, its annotator-table pages, and a CSV per chart.

Thin views: permission, project, one selector call, render. Reviewers and
admins (rewardmodel.view_dashboard) see every project; anyone else gets 403.
"""

from __future__ import annotations

import csv
import io

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import selectors
from dashboard.aggregates import aggregates_fold
from labeling.selectors import project_get
from lib.errors import NotFound
from preferences.tabular import csv_neutralise


def _project(slug: str):
    """The project, its live votes folded into the aggregates first, so that every
    figure counts every vote stored before this request (dashboard.aggregates)."""
    try:
        project = project_get(slug=slug)
    except NotFound:
        raise Http404("No such project.") from None
    aggregates_fold(project_id=project.pk)
    return project


def _page(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@require_GET
@permission_required("rewardmodel.view_dashboard", raise_exception=True)
def dashboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    payload = selectors.dashboard_payload(project=project, page=_page(request))
    charts = {
        k: payload[k]
        for k in (
            "versions",
            "learning_curve",
            "calibration",
            "length_buckets",
            "votes_per_pair",
            "percent_agreement",
            "fleiss_kappa",
            "krippendorff_alpha",
            "model_vs_human",
            "human_ceiling",
        )
    }
    charts["small_n"] = selectors.SMALL_SAMPLE_N
    # Each chart's data as a table: its text alternative on the page, the same rows as its CSV.
    tables = {
        chart: dict(zip(("header", "rows"), selectors.chart_table(payload=payload, chart=chart)))
        for chart in selectors.CHARTS
        if chart != "annotators"
    }
    context = {
        "project": project,
        "d": payload,
        "charts": charts,
        "tables": tables,
        "small_n": selectors.SMALL_SAMPLE_N,
        "annotators": payload["annotators"],
    }
    return render(request, "dashboard/dashboard.html", context)


@require_GET
@permission_required("rewardmodel.view_dashboard", raise_exception=True)
def dashboard_annotators(request: HttpRequest, slug: str) -> HttpResponse:
    """One page of the annotators table (HTMX swaps it in; also a plain page)."""
    project = _project(slug)
    page = selectors.annotator_page(project=project, page=_page(request))
    return render(request, "dashboard/dashboard_annotators.html", {"project": project, "annotators": page})


def _cell(value):
    if isinstance(value, str):
        return csv_neutralise(value)
    return "" if value is None else value


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@permission_required("rewardmodel.view_dashboard", raise_exception=True)
def dashboard_csv(request: HttpRequest, slug: str, chart: str) -> HttpResponse:
    if chart not in selectors.CHARTS:
        raise Http404("No such chart.")
    project = _project(slug)
    filename = f"{project.slug}-{chart}.csv"
    if chart == "annotators":
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(selectors.ANNOTATOR_CSV_HEADER)
            for row in selectors.annotator_rows_all(project=project):
                yield writer.writerow([_cell(v) for v in selectors.annotator_csv_row(row)])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        payload = selectors.dashboard_payload(project=project)
        header, rows = selectors.chart_table(payload=payload, chart=chart)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
