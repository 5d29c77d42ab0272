"""Deployment checks, login throttling, CSP and deny-by-default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent


def test_production_settings_pass_check_deploy(tmp_path):
    # The browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE for its own process;
    # a deployment never would, and check --deploy rightly refuses it.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SECRET_KEY": "x" * 20 + "-production-secret-" + "y" * 40,
        "DJANGO_SECURE": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "rm.example.org",
        "APP_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_bad_boolean_in_env_fails_loudly(tmp_path):
    env = {**os.environ, "DJANGO_SECURE": "maybe", "APP_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "DJANGO_SECURE='maybe' is not a boolean" in result.stderr


def test_login_is_throttled_after_repeated_failures(client, annotator_user, settings):
    # given five wrong passwords
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    # when the right password comes next, from the same place
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}, REMOTE_ADDR="10.0.0.9")
    # then it is refused with the lockout page, and no session starts
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_correct_login_works(client, annotator_user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(annotator_user.pk)


def test_content_security_policy_is_enforced(client, annotator_user):
    client.force_login(annotator_user)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in response.headers
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "img-src 'self' data:" in policy
    assert response["X-Frame-Options"] == "DENY"


def _all_routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _all_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_every_page_needs_a_login_unless_marked(db):
    # Deny by default: the only views open to anonymous users are the login
    # flow, the admin's own login, the API (which answers 401 itself), and the
    # favicon's redirect to a static file.
    open_views = [route for route, view in _all_routes() if getattr(view, "login_required", True) is False]
    for route in open_views:
        assert route.startswith(("accounts/", "admin/", "api/v1/", "healthz", "favicon.ico")), route


@pytest.mark.parametrize("path", ["/", "/p/demo/label/"])
def test_anonymous_users_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_api_docs_load_nothing_from_a_cdn(client, annotator_user):
    client.force_login(annotator_user)
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/password_change/", "/accounts/reset/MQ/set-password/"]
)
def test_password_reset_and_change_routes_are_gone(client, admin_user, path):
    # no mail to reset with, no throttle on guessing the old password: admins set passwords in /admin/
    assert client.get(path).status_code == 404
    client.force_login(admin_user)
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "a@example.org"}).status_code == 404


def test_behind_the_proxy_logins_lock_the_client_address_from_x_forwarded_for(client, annotator_user, settings):
    # given the app behind one TLS proxy, which connects from 10.0.0.1 and appends the client to the header
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def login(client_address: str, password: str, spoofed: str = ""):
        forwarded = f"{spoofed}, {client_address}" if spoofed else client_address
        return client.post(
            "/accounts/login/",
            {"username": "alice", "password": password},
            HTTP_X_FORWARDED_FOR=forwarded,
            **proxy,
        )

    # when one client fails five times, each time claiming a new address at the left of the header
    for i in range(settings.AXES_FAILURE_LIMIT):
        login("203.0.113.7", "wrong", spoofed=f"198.51.100.{i}")
    # then that client is locked out, even with the right password
    assert login("203.0.113.7", "pw-alice").status_code == 429
    # and the same user from another client, through the same proxy, is not
    response = login("203.0.113.99", "pw-alice")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(annotator_user.pk)


def test_directly_exposed_the_lock_is_on_the_remote_address_and_the_header_is_ignored(client, annotator_user, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="192.0.2.5",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        )
    locked = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}, REMOTE_ADDR="192.0.2.5")
    assert locked.status_code == 429
