"""API tokens: everyone issues their own; a token acting as someone else is a recorded admin action."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken


def test_a_user_issues_a_token_for_themselves_shown_once_and_revokes_it(client, annotator_user, admin_user):
    # given an annotator on the tokens page, which does not offer tokens for others
    client.force_login(annotator_user)
    page = client.get(reverse("accounts:tokens")).content.decode()
    assert 'data-testid="issue-own"' in page and 'data-testid="issue-for-user"' not in page
    # when they issue a token, even naming another user in the form
    response = client.post(reverse("accounts:token-issue"), {"name": "my script", "user": admin_user.pk})
    # then it acts as them, recorded as theirs, and the raw value is on that response only
    token = ApiToken.objects.get()
    assert token.user == annotator_user and token.created_by == annotator_user
    raw = response.context["raw_token"]
    assert raw.startswith(token.prefix) and raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert raw not in client.get(reverse("accounts:tokens")).content.decode()
    api = Client()  # no session: the token alone
    assert api.get("/api/v1/projects", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    # when they revoke it, it stops working
    client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert api.get("/api/v1/projects", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_issuing_a_token_for_another_user_is_an_admin_action_recorded_with_who_did_it(
    client, admin_user, reviewer_user, annotator_user
):
    # given a reviewer, who may not
    client.force_login(reviewer_user)
    url = reverse("accounts:token-issue-for-user")
    assert client.post(url, {"user": annotator_user.pk, "name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()
    # when an admin does it
    client.force_login(admin_user)
    response = client.post(url, {"user": annotator_user.pk, "name": "labeling bot"})
    # then the token acts as the annotator and says the admin issued it
    token = ApiToken.objects.get()
    assert response.status_code == 200
    assert (token.user, token.created_by) == (annotator_user, admin_user)
    assert "labeling bot" in client.get(reverse("accounts:tokens")).content.decode()


def test_users_see_and_revoke_only_their_own_tokens(client, annotator_user, annotator_user2, admin_user):
    from accounts import services

    mine, _ = services.api_token_issue(user=annotator_user, name="mine", created_by=annotator_user)
    theirs, _ = services.api_token_issue(user=annotator_user2, name="theirs", created_by=annotator_user2)
    client.force_login(annotator_user)
    page = client.get(reverse("accounts:tokens")).content.decode()
    assert "mine" in page and "theirs" not in page
    assert client.post(reverse("accounts:token-revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    # an admin sees and revokes any
    client.force_login(admin_user)
    assert "theirs" in client.get(reverse("accounts:tokens")).content.decode()
    client.post(reverse("accounts:token-revoke", args=[theirs.pk]))
    theirs.refresh_from_db()
    assert theirs.revoked_at is not None and mine.revoked_at is None


def test_bad_input_writes_nothing(client, admin_user, reviewer_user):
    client.force_login(admin_user)
    assert client.post(reverse("accounts:token-issue"), {"name": " "}).status_code == 400
    url = reverse("accounts:token-issue-for-user")
    assert client.post(url, {"user": reviewer_user.pk, "name": " "}).status_code == 400
    assert client.post(url, {"user": 99999, "name": "x"}).status_code == 400
    assert not ApiToken.objects.exists()


def test_the_service_refuses_a_token_for_someone_else_without_the_permission(reviewer_user, annotator_user):
    from django.core.exceptions import PermissionDenied

    from accounts import services

    with pytest.raises(PermissionDenied):
        services.api_token_issue(user=annotator_user, name="x", created_by=reviewer_user)


def test_the_command_line_issues_tokens_recorded_as_such(annotator_user, capsys):
    call_command("issue_token", "--user", annotator_user.username, "--name", "ops")
    token = ApiToken.objects.get()
    assert token.user == annotator_user and token.created_by is None


def test_every_token_field_is_read_only_in_the_admin(rf, admin_user):
    model_admin = admin.site._registry[ApiToken]
    editable = {f.name for f in ApiToken._meta.fields if f.editable and not f.primary_key}
    assert editable <= set(model_admin.get_readonly_fields(rf.get("/"), ApiToken()))
    assert not model_admin.has_add_permission(rf.get("/"))


def test_the_tokens_page_is_linked_for_everyone_signed_in(client, admin_user, annotator_user):
    # every user mints and revokes their own tokens, so every user gets the link
    for user in (admin_user, annotator_user):
        client.force_login(user)
        assert 'href="/tokens/" data-testid="nav-tokens"' in client.get("/").content.decode()


def test_revoke_asks_before_it_acts(client, admin_user):
    from accounts import services

    services.api_token_issue(user=admin_user, name="ci", created_by=admin_user)
    client.force_login(admin_user)
    html = client.get(reverse("accounts:tokens")).content.decode()
    assert 'data-confirm="Revoke “ci” of adam?' in html
