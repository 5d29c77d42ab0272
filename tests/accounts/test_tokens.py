"""The API tokens page: issued once, revoked, admins only."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken


def test_admin_issues_a_token_shown_once_and_revokes_it(client, admin_user, reviewer_user):
    # given an admin on the tokens page
    client.force_login(admin_user)
    assert client.get(reverse("accounts:tokens")).status_code == 200
    # when they issue a token for the reviewer
    response = client.post(reverse("accounts:token-issue"), {"user": reviewer_user.pk, "name": "ci"})
    # then the raw token is on that response only, and it works against the API
    token = ApiToken.objects.get()
    raw = response.context["raw_token"]
    assert raw.startswith(token.prefix) and raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert raw not in client.get(reverse("accounts:tokens")).content.decode()
    api = Client()  # no session: the token alone
    assert api.get("/api/v1/projects", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    # when they revoke it, it stops working
    client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert api.get("/api/v1/projects", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_token_pages_are_admin_only_and_bad_input_writes_nothing(client, admin_user, reviewer_user):
    client.force_login(reviewer_user)
    assert client.get(reverse("accounts:tokens")).status_code == 403
    assert client.post(reverse("accounts:token-issue"), {"user": reviewer_user.pk, "name": "x"}).status_code == 403
    client.force_login(admin_user)
    assert client.post(reverse("accounts:token-issue"), {"user": reviewer_user.pk, "name": " "}).status_code == 400
    assert client.post(reverse("accounts:token-issue"), {"user": 99999, "name": "x"}).status_code == 400
    assert not ApiToken.objects.exists()


def test_the_tokens_page_is_linked_for_those_who_may_open_it(client, admin_user, annotator_user):
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    assert 'href="/tokens/" data-testid="nav-tokens"' in html
    client.force_login(annotator_user)
    assert 'href="/tokens/"' not in client.get("/").content.decode()


def test_revoke_asks_before_it_acts(client, admin_user):
    from accounts import services

    services.api_token_issue(user=admin_user, name="ci")
    client.force_login(admin_user)
    html = client.get(reverse("accounts:tokens")).content.decode()
    assert 'data-confirm="Revoke “ci” of adam?' in html
