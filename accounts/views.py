"""The API tokens page: list, issue (the raw value shown once), revoke.

Every user issues and revokes tokens for themselves: a token acts as its
user, with that user's permissions. Issuing one that acts as *another*
user is a separate action for accounts.issue_for_others (admins), and the
token records who issued it. Views stay thin and call accounts.services.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors, services
from lib.errors import ServiceError


def _tokens_context(request: HttpRequest, **extra) -> dict:
    context = {"tokens": selectors.api_tokens_visible(user=request.user), **extra}
    if request.user.has_perm("accounts.issue_for_others"):
        context["users"] = get_user_model().objects.filter(is_active=True).order_by("username")
    return context


def _issued(request: HttpRequest, token, raw: str) -> HttpResponse:
    response = render(request, "accounts/tokens.html", _tokens_context(request, issued=token, raw_token=raw))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def tokens_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/tokens.html", _tokens_context(request))


@require_POST
def token_issue(request: HttpRequest) -> HttpResponse:
    """Issue a token acting as the user who asks; its raw value is in this response only."""
    try:
        token, raw = services.api_token_issue(
            user=request.user, name=request.POST.get("name", ""), created_by=request.user
        )
    except ServiceError as exc:
        return render(request, "accounts/tokens.html", _tokens_context(request, error=exc.message), status=400)
    return _issued(request, token, raw)


@require_POST
@permission_required("accounts.issue_for_others", raise_exception=True)
def token_issue_for_user(request: HttpRequest) -> HttpResponse:
    """An admin issues a token acting as another user (recorded as theirs in created_by)."""
    user = get_user_model().objects.filter(pk=request.POST.get("user") or None, is_active=True).first()
    try:
        if user is None:
            raise ServiceError("Pick the user the token acts as.")
        token, raw = services.api_token_issue(user=user, name=request.POST.get("name", ""), created_by=request.user)
    except ServiceError as exc:
        return render(request, "accounts/tokens.html", _tokens_context(request, error=exc.message), status=400)
    return _issued(request, token, raw)


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one's own token (or anyone's, with accounts.change_apitoken); others' tokens are 404."""
    if not selectors.api_tokens_visible(user=request.user).filter(pk=token_id).exists():
        raise Http404("No such token.")
    try:
        services.api_token_revoke(token_id=token_id, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Token revoked.")
    return redirect(reverse("accounts:tokens"))
