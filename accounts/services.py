"""Writes for accounts: API tokens and the demo users."""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts import roles
from accounts.models import ApiToken
from lib.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


def api_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def api_token_issue(
    *, user: AbstractBaseUser, name: str, created_by: AbstractBaseUser | None = None
) -> tuple[ApiToken, str]:
    """A new bearer token acting as `user`. The raw value is returned once and never stored.

    `created_by` is who asked: `user` themselves, someone allowed to issue
    tokens for others (accounts.issue_for_others; a token is that user's
    identity on the API, votes included), or None for `manage.py issue_token`.
    """
    if not name.strip():
        raise InvalidInput("A token needs a name.")
    if created_by is not None and created_by.pk != user.pk and not created_by.has_perm("accounts.issue_for_others"):
        raise PermissionDenied("Only admins may issue a token that acts as another user.")
    raw = "rmt_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], prefix=raw[:12], key_hash=api_token_hash(raw), created_by=created_by
    )
    log.info(
        "API token %s... for %s issued by %s",
        token.prefix,
        user.get_username(),
        created_by.get_username() if created_by is not None else "the command line",
    )
    return token, raw


def api_token_revoke(*, token_id: int, user: AbstractBaseUser | None = None) -> None:
    """Revoke a token: one's own, or anyone's with accounts.change_apitoken (or from the command line)."""
    tokens = ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True)
    if user is not None and not user.has_perm("accounts.change_apitoken"):
        tokens = tokens.filter(user=user)
    if not tokens.update(revoked_at=timezone.now()):
        raise NotFound("No such active token.")


# The demo users `make run` starts with: (username, role, environment variable holding the password).
DEMO_USERS = (
    ("admin", roles.ADMIN, "DEMO_ADMIN_PASSWORD"),
    ("reviewer", roles.REVIEWER, "DEMO_REVIEWER_PASSWORD"),
    ("annotator", roles.ANNOTATOR, "DEMO_ANNOTATOR_PASSWORD"),
)


def user_ensure(*, username: str, role: str, password: str | None) -> tuple[AbstractBaseUser, bool, str | None]:
    """The user `username` in the group `role`, created if missing (admins are staff and superusers).

    Returns (user, created, password to show): the password is a new random
    one when the user was created without one given, else None. An existing
    user keeps their password unless one is given.
    """
    roles.roles_sync()
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        user = User(username=username, is_staff=(role == roles.ADMIN), is_superuser=(role == roles.ADMIN))
    shown = None
    if created or password:
        if not password:
            shown = password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
    user.groups.add(Group.objects.get(name=role))
    return user, created, shown
