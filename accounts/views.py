"""The API tokens page: list, issue (the raw value shown once), revoke.

Admins (accounts.add_apitoken) issue tokens that act as a user; views stay
thin and call accounts.services.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import services
from accounts.models import ApiToken
from lib.errors import ServiceError


def _tokens_context(**extra) -> dict:
    return {
        "tokens": ApiToken.objects.select_related("user").order_by("-created_at"),
        "users": get_user_model().objects.filter(is_active=True).order_by("username"),
        **extra,
    }


@require_GET
@permission_required("accounts.add_apitoken", raise_exception=True)
def tokens_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/tokens.html", _tokens_context())


@require_POST
@permission_required("accounts.add_apitoken", raise_exception=True)
def token_issue(request: HttpRequest) -> HttpResponse:
    """Issue a token and show its raw value in this response only; it is never stored."""
    user = get_user_model().objects.filter(pk=request.POST.get("user") or None, is_active=True).first()
    try:
        if user is None:
            raise ServiceError("Pick the user the token acts as.")
        token, raw = services.api_token_issue(user=user, name=request.POST.get("name", ""))
    except ServiceError as exc:
        return render(request, "accounts/tokens.html", _tokens_context(error=exc.message), status=400)
    response = render(request, "accounts/tokens.html", _tokens_context(issued=token, raw_token=raw))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@permission_required("accounts.change_apitoken", raise_exception=True)
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        services.api_token_revoke(token_id=token_id)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Token revoked.")
    return redirect(reverse("accounts:tokens"))
