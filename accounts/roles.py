"""The three roles as Django groups, and what each may do.

A role is a group with permissions; views check permissions, never group
names, so a deployment can grant one permission without a whole role.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ANNOTATOR = "annotator"
REVIEWER = "reviewer"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ANNOTATOR: ["labeling.label_pairs"],
    REVIEWER: ["rewardmodel.view_dashboard"],
    ADMIN: [
        "labeling.label_pairs",
        "labeling.manage_project",
        "labeling.add_project",
        "labeling.change_project",
        "labeling.view_project",
        "rewardmodel.view_dashboard",
        "rewardmodel.retrain",
        "rewardmodel.score",
        "accounts.add_apitoken",
        "accounts.change_apitoken",
        "accounts.view_apitoken",
        "accounts.issue_for_others",
    ],
}


def _permission(dotted: str) -> Permission | None:
    app_label, codename = dotted.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()


def roles_sync() -> None:
    """Create the role groups and give each its permissions (idempotent)."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        found = [p for p in (_permission(d) for d in perms) if p is not None]
        group.permissions.add(*found)


def roles_sync_on_migrate(sender, **kwargs) -> None:
    # Permissions of later apps do not exist yet while earlier apps migrate;
    # syncing after each app is cheap and ends complete.
    if kwargs.get("plan") is not None or kwargs.get("apps") is not None:
        roles_sync()
