"""API authentication: admin-issued bearer tokens, or the browser session.

Session requests go through Ninja's CSRF check on unsafe methods; bearer
tokens need none, as no browser sends them on its own.
"""
from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from labeling.models import ApiToken
from labeling.services import api_token_hash

_LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        found = (
            # The annotator row rides along: every labeling call needs it.
            ApiToken.objects.select_related("user", "user__annotator")
            .filter(key_hash=api_token_hash(token), revoked_at__isnull=True)
            .first()
        )
        if found is None or not found.user.is_active:
            return None
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at > _LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.user = found.user
        return found.user


API_AUTH = [BearerTokenAuth(), SessionAuth()]


def require_perm(request: HttpRequest, perm: str) -> None:
    if not request.auth.has_perm(perm):
        raise HttpError(403, "You do not have permission for this.")
