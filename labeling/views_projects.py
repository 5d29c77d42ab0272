"""Admin pages to set up a project in the app: create it, edit its settings, manage its members.

Creating needs labeling.add_project, the rest labeling.change_project (both
in the admin role). The settings page is also the next step after creating:
it offers the upload form and the members, so a project goes from nothing to
ready to label on two pages. Views parse and render; labeling.services writes.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from labeling import selectors, services
from labeling.forms import ProjectForm, member_names, project_form_sections
from labeling.models import Annotator, Pair
from labeling.rendering import render_markdown
from lib.errors import NotFound, ServiceError
from preferences.formats import FORMATS
from preferences.readers import UPLOAD_SUFFIXES


def _project(slug: str):
    try:
        return selectors.project_get(slug=slug)
    except NotFound:
        raise Http404("No such project.") from None


def _save(form: ProjectForm, sections, *, project=None):
    """Write the project and every section in one transaction; the project, or None with the error on the form."""
    try:
        with transaction.atomic():
            if project is None:
                project = services.project_create(slug=form.cleaned_data["slug"], **form.changes())
            else:
                project = services.project_update(project=project, **form.changes())
            for section in sections:
                section.save(project=project)
    except ServiceError as exc:
        form.add_error(None, exc.message)
        return None
    return project


@require_http_methods(["GET", "POST"])
@permission_required("labeling.add_project", raise_exception=True)
def project_new(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = ProjectForm(data, creating=True)
    sections = project_form_sections(project=None, data=data)
    if data is not None and form.is_valid() and all(s.form.is_valid() for s in sections):
        project = _save(form, sections)
        if project is not None:
            messages.success(request, f"Project “{project.name}” created. Next: upload its pairs and add members.")
            return redirect("project-settings", slug=project.slug)
    status = 400 if data is not None else 200
    return render(request, "labeling/project_form.html", {"form": form, "sections": sections}, status=status)


@require_http_methods(["GET", "POST"])
@permission_required("labeling.change_project", raise_exception=True)
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(slug)
    pairs = Pair.objects.filter(project=project).count()
    data = request.POST if request.method == "POST" else None
    initial = {name: getattr(project, name) for name in ProjectForm(creating=False).fields}
    form = ProjectForm(data, initial=initial, creating=False, split_fixed=pairs > 0)
    sections = project_form_sections(project=project, data=data)
    if data is not None and form.is_valid() and all(s.form.is_valid() for s in sections):
        if _save(form, sections, project=project) is not None:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", slug=project.slug)
    context = {
        "project": project,
        "form": form,
        "sections": sections,
        "pairs": pairs,
        "members": selectors.project_member_names(project=project),
        "formats": FORMATS,
        "suffixes": ", ".join(UPLOAD_SUFFIXES),
    }
    return render(request, "labeling/project_settings.html", context, status=400 if data is not None else 200)


@require_http_methods(["GET", "POST"])
@permission_required("labeling.change_project", raise_exception=True)
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    """Members with their progress; POST adds the pasted names, all or none."""
    project = _project(slug)
    error, status = "", 200
    text = ""
    if request.method == "POST":
        text = request.POST.get("names", "")
        try:
            added = services.project_members_add(project=project, names=member_names(text))
        except ServiceError as exc:
            error, status = exc.message, exc.status
        else:
            _members_added_message(request, added)
            return redirect("project-members", slug=project.slug)
    context = {
        "project": project,
        "members": selectors.project_members_progress(project=project),
        "error": error,
        "names": text,
    }
    return render(request, "labeling/project_members.html", context, status=status)


def _members_added_message(request: HttpRequest, added: services.MembersAdded) -> None:
    parts = []
    if added.added:
        parts.append(f"Added {', '.join(added.added)}.")
    if added.already_members:
        parts.append(f"Already members: {', '.join(added.already_members)}.")
    messages.success(request, " ".join(parts) or "Nobody to add.")
    if added.cannot_label:
        messages.warning(
            request,
            f"{', '.join(added.cannot_label)} cannot label yet: give them the annotator role in the admin.",
        )


@require_POST
@permission_required("labeling.change_project", raise_exception=True)
def project_member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    project = _project(slug)
    user = get_user_model().objects.filter(pk=user_id).first()
    try:
        if user is None:
            raise NotFound("No such user.")
        services.project_member_remove(project=project, username=user.get_username())
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {user.get_username()}. Their votes stay.")
    return redirect("project-members", slug=project.slug)


@require_POST
@permission_required("labeling.change_project", raise_exception=True)
def annotator_reinstate(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    """Lift a member's automatic pause, with the reason the form requires (recorded with who and when)."""
    project = _project(slug)
    annotator = Annotator.objects.filter(user_id=user_id).select_related("user").first()
    try:
        if annotator is None:
            raise NotFound("No such annotator.")
        services.annotator_reinstate(
            project=project, annotator=annotator, by=request.user, reason=request.POST.get("reason", "")
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Reinstated {annotator}: they get pairs again and their votes train again.")
    return redirect("project-members", slug=project.slug)


@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """The instructions as annotators will see them: rendered and sanitised, for the form's preview."""
    if not (request.user.has_perm("labeling.add_project") or request.user.has_perm("labeling.change_project")):
        raise PermissionDenied
    text = request.POST.get("instructions", "")[:100_000]
    html = render_markdown(text) if text.strip() else "<p class='muted'>Nothing to preview yet.</p>"
    return HttpResponse(html)
