"""Annotator pages: the project list, the keyboard-first labeling page, and one's vote history.

Views stay thin: they parse the request, call a selector or a service and
render. The vote, skip and undo endpoints answer HTMX with the next card,
and a plain form post with a redirect, so the page also works without JS.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling import selectors, services
from labeling.rendering import render_conversation, render_markdown, render_response
from labeling.selectors import PAIRS_LEFT_CAP
from lib.errors import InvalidInput, NotFound, ServiceError


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(user=request.user)
    return render(request, "labeling/home.html", {"projects": projects})


def _labeling_project(request: HttpRequest, slug: str):
    try:
        return selectors.project_get_for_labeling(user=request.user, slug=slug)
    except NotFound:
        raise Http404("No such project.") from None


def _card_context(request: HttpRequest, project, *, undone: services.UndoneVote | None = None) -> dict:
    """The card: the annotator's lease (after an undo, the undone pair with its old vote) and
    their own progress. Only their own figures: nothing project-wide is shown to annotators."""
    paused = ""
    try:
        assignment = undone.assignment if undone else services.assignment_next(project=project, user=request.user)
    except services.AnnotatorPaused as exc:
        assignment, paused = None, exc.message
    left = selectors.pairs_left_for_annotator(project=project, user=request.user, holding=assignment is not None)
    context = {
        "project": project,
        "assignment": assignment,
        "undone": undone,
        "done_count": selectors.annotator_vote_count(project=project, user=request.user),
        "left_count": left,
        "left_more": left > PAIRS_LEFT_CAP,
        "left_cap": PAIRS_LEFT_CAP,
        "me": selectors.annotator_own_figures(project=project, user=request.user),
        "undo_minutes": round(settings.LABELING_UNDO_SECONDS / 60),
        "paused": paused,
    }
    if assignment is not None:
        pair = assignment.pair
        texts = {"a": pair.response_a, "b": pair.response_b}
        context.update(
            turns=render_conversation(pair.prompt),
            left_html=render_response(texts[assignment.left]),
            right_html=render_response(texts[assignment.right]),
        )
    return context


@require_GET
@permission_required("labeling.label_pairs", raise_exception=True)
def label(request: HttpRequest, slug: str) -> HttpResponse:
    project = _labeling_project(request, slug)
    context = _card_context(request, project)
    context["instructions_html"] = render_markdown(project.instructions) if project.instructions else ""
    # A paused annotator gets the page, saying so, with 403: no pairs for them here.
    return render(request, "labeling/label.html", context, status=403 if context["paused"] else 200)


def _next_card(request: HttpRequest, project, *, error: str = "", status: int = 200) -> HttpResponse:
    if not request.headers.get("HX-Request"):
        return redirect("label", slug=project.slug)
    context = _card_context(request, project)
    context["error"] = error
    return render(request, "labeling/_card.html", context, status=status)


def _int_or_none(value: str | None, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a whole number.") from None


@require_POST
@permission_required("labeling.label_pairs", raise_exception=True)
def vote(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project = _labeling_project(request, slug)
    choice = request.POST.get("choice", "")
    try:
        services.vote_submit(
            assignment_id=assignment_id,
            user=request.user,
            choice=choice,
            # The page offers strength beside every button; it is only asked for a side.
            strength=_int_or_none(request.POST.get("strength"), "strength") if choice in ("left", "right") else None,
            rationale=request.POST.get("rationale", ""),
            latency_ms=_int_or_none(request.POST.get("latency_ms"), "latency_ms"),
        )
    except ServiceError as exc:
        return _error(request, project, exc)
    return _next_card(request, project)


@require_POST
@permission_required("labeling.label_pairs", raise_exception=True)
def skip(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project = _labeling_project(request, slug)
    try:
        services.assignment_skip(assignment_id=assignment_id, user=request.user)
    except ServiceError as exc:
        return _error(request, project, exc)
    return _next_card(request, project)


_CHOICE_TEXT = {"left": "left", "right": "right", "tie": "tie", "both_bad": "both bad"}


@require_POST
@permission_required("labeling.label_pairs", raise_exception=True)
def undo(request: HttpRequest, slug: str) -> HttpResponse:
    """Undo one's last vote in the project: the pair comes back with the earlier choice shown."""
    project = _labeling_project(request, slug)
    try:
        undone = services.vote_undo_last(project=project, user=request.user)
    except ServiceError as exc:
        return _error(request, project, exc)
    if not request.headers.get("HX-Request"):
        messages.info(request, f"Vote undone: you had picked {_CHOICE_TEXT[undone.choice]}. Vote again.")
        return redirect("label", slug=project.slug)
    return render(request, "labeling/_card.html", _card_context(request, project, undone=undone))


@require_GET
@permission_required("labeling.label_pairs", raise_exception=True)
def history(request: HttpRequest, slug: str) -> HttpResponse:
    project = _labeling_project(request, slug)
    rows = selectors.vote_history_for_annotator(project=project, user=request.user)
    context = {"project": project, "rows": rows, "undo_minutes": round(settings.LABELING_UNDO_SECONDS / 60)}
    return render(request, "labeling/history.html", context)


@require_POST
@permission_required("labeling.label_pairs", raise_exception=True)
def history_change(request: HttpRequest, slug: str, vote_id: int) -> HttpResponse:
    project = _labeling_project(request, slug)
    choice = request.POST.get("choice", "")
    try:
        strength = _int_or_none(request.POST.get("strength"), "strength") if choice in ("left", "right") else None
        services.vote_change(vote_id=vote_id, user=request.user, choice=choice, strength=strength)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Changed: you now pick {_CHOICE_TEXT.get(choice, choice)}.")
    return redirect("label-history", slug=project.slug)


def _error(request: HttpRequest, project, exc: ServiceError) -> HttpResponse:
    if request.headers.get("HX-Request"):
        # HTMX swaps only 2xx by default; the card carries the message and the
        # status tells scripts and tests what happened.
        return _next_card(request, project, error=exc.message, status=exc.status)
    return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
