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

from accounts.services import api_token_hash
from labeling import sql

_LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        found = sql.token_user(key_hash=api_token_hash(token))  # runs on every API call: one query
        if found is None or not found[1].is_active:
            return None
        token_row, user = found
        now = timezone.now()
        if token_row.last_used_at is None or now - token_row.last_used_at > _LAST_USED_RESOLUTION:
            sql.token_touch(token_id=token_row.pk, now=now)
        request.user = user
        return user


API_AUTH = [BearerTokenAuth(), SessionAuth()]


def require_perm(request: HttpRequest, perm: str) -> None:
    if not request.auth.has_perm(perm):
        raise HttpError(403, "You do not have permission for this.")
