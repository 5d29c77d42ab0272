"""Shared fixtures: one user per role, a project, and pairs to label.

Tests run on SQLite by default; the ones marked `postgres` run in a second
pass against the real PostgreSQL server (see the Makefile's test target), and
the ones marked `both_databases` in both.
Redis is the real server at REDIS_URL (127.0.0.1:6379, db 15 by default).
"""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group

from accounts import roles
from config.celery import app as celery_app
from labeling import services
from preferences.records import ImportedVote, PreferenceRecord

# pytest-django imports the settings before this file runs, so with REDIS_URL
# unset they already point at `make run`'s embedded port. Point them, and the
# Celery app the tests publish through, at the server the worker fixtures use.
_REDIS_URL = os.environ["REDIS_URL"]
if django_settings.REDIS_URL != _REDIS_URL:
    django_settings.REDIS_URL = django_settings.CELERY_BROKER_URL = django_settings.CELERY_RESULT_BACKEND = _REDIS_URL
    celery_app.conf.update(broker_url=_REDIS_URL, result_backend=_REDIS_URL)


def pytest_collection_modifyitems(config, items):
    """Run postgres-marked tests only when the database is PostgreSQL, the rest only when it is not,
    and those marked both_databases in either pass."""
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    for item in items:
        if "both_databases" in item.keywords:
            continue
        if ("postgres" in item.keywords) != on_postgres:
            item.add_marker(pytest.mark.skip(reason="runs in the other database pass (make test runs both)"))


@pytest.fixture(autouse=True)
def aggregates_checked_after_concurrency(request):
    """After a test marked `concurrency`, the dashboard aggregates must equal a rebuild
    (`manage.py check_aggregates --all`, which exits 1 naming the tables that differ)."""
    checked = request.node.get_closest_marker("concurrency") is not None
    if checked:  # set the database up first, so the check runs before it is flushed
        request.getfixturevalue("transactional_db")
    yield
    if checked:
        from io import StringIO

        from django.core.management import call_command

        call_command("check_aggregates", "--all", stdout=StringIO())


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2 at production strength costs ~0.3 s per user; tests make many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(django_user_model, username: str, role: str | None, **extra):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)
    if role:
        roles.roles_sync()
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def annotator_user(django_user_model):
    return make_user(django_user_model, "alice", roles.ANNOTATOR)


@pytest.fixture
def annotator_user2(django_user_model):
    return make_user(django_user_model, "bob", roles.ANNOTATOR)


@pytest.fixture
def reviewer_user(django_user_model):
    return make_user(django_user_model, "rita", roles.REVIEWER)


@pytest.fixture
def admin_user(django_user_model):
    return make_user(django_user_model, "adam", roles.ADMIN, is_staff=True)


@pytest.fixture
def no_role_user(django_user_model):
    return make_user(django_user_model, "nora", None)


def make_records(n: int, *, votes: int = 0, prefix: str = "prompt") -> list[PreferenceRecord]:
    return [
        PreferenceRecord(
            prompt=f"{prefix} {i}: explain topic {i}",
            response_a=f"A careful, correct answer about topic {i}.",
            response_b=f"meh {i}",
            votes=tuple(ImportedVote(f"ext-{k}", "a") for k in range(votes)),
        )
        for i in range(n)
    ]


@pytest.fixture
def project(db, annotator_user, annotator_user2):
    project = services.project_create(slug="demo", name="Demo", instructions="Pick the **better** answer.")
    project.members.add(annotator_user, annotator_user2)
    return project


@pytest.fixture
def pairs(project):
    services.pairs_import_batch(project=project, records=make_records(12), shuffle_sides=False)
    return list(project.pairs.order_by("id"))


# --------------------------------------------------------------------------- #
# Real browser: Playwright for Python driving Debian's chromium
# --------------------------------------------------------------------------- #
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop; Django refuses ORM calls from
    # a thread with a running loop unless told this is deliberate.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
