"""API tokens. Users, groups and permissions are Django's own (roles: accounts.roles)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token for the JSON API; it acts as its user. Only its hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who issued it: the user themselves, an admin (for someone else), or empty for the command line.",
    )

    class Meta:
        # The table labeling created before tokens had an app of their own.
        db_table = "labeling_apitoken"
        permissions = [("issue_for_others", "Can issue API tokens that act as another user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
