"""Reads for accounts: a user's permissions in one query, and the tokens a user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet

from accounts.models import ApiToken

# Permissions granted to a user directly or through a group; {user} is the
# user id (a column or %s). labeling.sql's token query embeds it too.
PERMISSIONS_OF_USER = (
    "auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id"
    " WHERE p.id IN (SELECT permission_id FROM auth_user_user_permissions WHERE user_id = {user}"
    "  UNION SELECT gp.permission_id FROM auth_group_permissions gp"
    "  JOIN auth_user_groups ug ON ug.group_id = gp.group_id WHERE ug.user_id = {user})"
)


def string_agg(expression: str) -> str:
    """SQL for the comma-joined values of `expression` (codenames and app labels hold no commas)."""
    if connection.vendor == "postgresql":
        return f"string_agg({expression}, ',')"
    return f"group_concat({expression}, ',')"


def user_permissions(*, user_id: int) -> set[str]:
    """ "app_label.codename" of every permission the user has, directly or through a group, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ct.app_label, p.codename FROM " + PERMISSIONS_OF_USER.format(user="%s"), [user_id, user_id]
        )
        return {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}


def api_tokens_visible(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """Everyone sees their own tokens; accounts.view_apitoken sees all of them."""
    tokens = ApiToken.objects.select_related("user", "created_by").order_by("-created_at")
    return tokens if user.has_perm("accounts.view_apitoken") else tokens.filter(user=user)
