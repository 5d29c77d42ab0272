"""GET /api/v1/projects/{slug}/metrics: every dashboard figure as JSON.

For reviewers and admins (rewardmodel.view_dashboard); a bearer token acts
as its user. The annotators table is paged as on the page.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from dashboard.aggregates import aggregates_fold
from dashboard.selectors import ANNOTATORS_PER_PAGE, MAX_PER_PAGE, dashboard_payload
from labeling.api_auth import require_perm
from labeling.selectors import project_get

router = Router(tags=["dashboard"])


class MetricsQuery(Schema):
    page: int = Field(1, ge=1, description="Page of the annotators table (flagged first).")
    per_page: int = Field(ANNOTATORS_PER_PAGE, ge=1, le=MAX_PER_PAGE)


@router.get("/projects/{slug}/metrics", response=dict)
def project_metrics(request: HttpRequest, slug: str, query: Query[MetricsQuery]):
    """Agreement (percent, Fleiss' kappa, Krippendorff's alpha, each with a 95% CI), model vs human and the
    human ceiling, versions, calibration, length buckets, annotators and red flags."""
    require_perm(request, "rewardmodel.view_dashboard")
    project = project_get(slug=slug)
    aggregates_fold(project_id=project.pk)  # count every vote stored so far, as the dashboard page does
    return dashboard_payload(project=project, page=query.page, per_page=query.per_page)
