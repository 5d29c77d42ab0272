"""Runs and versions pages, and the live run page.

Reviewers (rewardmodel.view_dashboard) see runs and versions; retraining,
cancelling and promoting need rewardmodel.retrain. Views stay thin: they
call a selector or a service and render, and answer service errors with
a message on the page they redirect to.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling import selectors as labeling_selectors
from lib.errors import NotFound, ServiceError
from rewardmodel import retention, selectors, services
from rewardmodel.errors import RunAlreadyActive
from rewardmodel.models import RetrainPolicy, TrainingRun


def runs_viewer_required(view):
    """Reviewers (view_dashboard) and retrainers see runs; anyone else gets 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not (request.user.has_perm("rewardmodel.view_dashboard") or request.user.has_perm("rewardmodel.retrain")):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _project(slug: str):
    try:
        return labeling_selectors.project_get(slug=slug)
    except NotFound:
        raise Http404("No such project.") from None


def _run(run_id: int) -> TrainingRun:
    try:
        return selectors.training_run_get(run_id=run_id)
    except NotFound:
        raise Http404("No such run.") from None


def _runs_context(project) -> dict:
    runs = list(selectors.training_run_list(project=project))
    versions = list(selectors.model_version_list(project=project))
    active = next((v for v in versions if v.is_active), None)
    return {
        "project": project,
        "runs": runs,
        "any_active": any(r.is_active for r in runs),
        "versions": versions,
        "active_number": active.number if active else 0,
    }


@require_GET
@runs_viewer_required
def runs_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    context = _runs_context(project)
    context["policy"] = RetrainPolicy.for_project(project)
    if request.user.has_perm("rewardmodel.retrain"):
        context["leftovers"] = retention.leftover_folders(project_id=project.pk)
    return render(request, "rewardmodel/runs.html", context)


@require_POST
@permission_required("rewardmodel.retrain", raise_exception=True)
def policy_resume(request: HttpRequest, slug: str) -> HttpResponse:
    """Lift the pause the scheduler put on a project after repeated failed runs."""
    project = _project(slug)
    try:
        services.retrain_policy_resume(project=project, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Automatic retraining resumed.")
    return redirect("rewardmodel:runs", slug=project.slug)


@require_GET
@runs_viewer_required
def runs_table(request: HttpRequest, slug: str) -> HttpResponse:
    """The runs and versions tables alone: the runs page polls them while a run is active."""
    return render(request, "rewardmodel/_runs_body.html", _runs_context(_project(slug)))


@require_POST
@permission_required("rewardmodel.retrain", raise_exception=True)
def run_start(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    try:
        run = services.training_run_request(
            project=project,
            trigger=TrainingRun.Trigger.ADMIN,
            user=request.user,
            kind=request.POST.get("kind") or TrainingRun.Kind.FINETUNE,
        )
    except RunAlreadyActive as exc:
        messages.warning(request, f"Already running: run {exc.run.pk} is {exc.run.status}. Watch it here.")
        return redirect("rewardmodel:run-detail", run_id=exc.run.pk)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("rewardmodel:runs", slug=project.slug)
    # No "queued" message: the run page says the status itself, and keeps it current.
    return redirect("rewardmodel:run-detail", run_id=run.pk)


@require_GET
@runs_viewer_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(run_id)
    context = {"run": run, "project": run.project, "waiting": selectors.training_run_wait_reason(run=run)}
    return render(request, "rewardmodel/run_detail.html", context)


@require_GET
@runs_viewer_required
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The live part of the run page; HTMX polls it every second until the run ends."""
    run = _run(run_id)
    return render(
        request, "rewardmodel/_run_progress.html", {"run": run, "waiting": selectors.training_run_wait_reason(run=run)}
    )


@require_POST
@permission_required("rewardmodel.retrain", raise_exception=True)
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(run_id)
    try:
        run = services.training_run_cancel(run=run, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(
            request,
            "Cancelled."
            if run.status == TrainingRun.Status.CANCELLED
            else "Cancel requested: the worker stops within seconds.",
        )
    return redirect("rewardmodel:run-detail", run_id=run.pk)


@require_POST
@permission_required("rewardmodel.retrain", raise_exception=True)
def version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    try:
        version = selectors.model_version_get(version_id=version_id)
    except NotFound:
        raise Http404("No such version.") from None
    try:
        services.model_version_activate(version=version, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Version {version.number} is live.")
    return redirect("rewardmodel:runs", slug=version.project.slug)
