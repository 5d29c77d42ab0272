"""The PostgreSQL backend's health check (config/postgresql): a dropped connection is
found without a query, and the next request gets a fresh one."""

import time

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _admin_connection():
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    )


def _calls(pid: int) -> str:
    with _admin_connection() as other:
        return other.execute("SELECT state_change::text FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_health_check_sends_nothing_and_finds_a_dropped_connection(client):
    # given a persistent connection that has run a request
    assert settings.DATABASES["default"]["ENGINE"] == "config.postgresql"
    assert client.get("/healthz").status_code == 200
    pid = connection.connection.info.backend_pid
    # when its health is checked while it is fine, then it is usable and the server saw nothing
    seen = _calls(pid)
    assert connection.is_usable()
    assert _calls(pid) == seen
    # when the server drops it (a restart or an admin's pg_terminate_backend)
    with _admin_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    # then the check says so, and the next request runs on a new connection instead of failing
    # (the test client skips the request_started signal that runs this in a server)
    assert not connection.is_usable()
    close_old_connections()
    assert client.get("/healthz").json() == {"database": "ok"}
    assert connection.connection.info.backend_pid != pid


def test_a_vote_on_a_connection_the_server_dropped_writes_nothing_and_the_retry_stores_it_once(
    django_user_model,
):
    # given an annotator with a live lease, on a connection PostgreSQL then drops (a restart)
    from labeling import services
    from labeling.models import Pair, Vote
    from tests.conftest import make_records, make_user

    project = services.project_create(slug="restart", name="Restart")
    services.pairs_import_batch(project=project, records=make_records(2), shuffle_sides=False)
    user = make_user(django_user_model, "steady", "annotator")
    project.members.add(user)
    assignment = services.assignment_next(project=project, user=user)
    pid = connection.connection.info.backend_pid
    with _admin_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # when the vote is submitted on it
    with pytest.raises(Exception) as caught:
        services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
    # then the request fails with a database error and nothing is half-written
    assert "connection" in str(caught.value).lower() or "terminat" in str(caught.value).lower()
    close_old_connections()  # what the next request does first (a dead connection is replaced)
    assert Vote.objects.count() == 0 and Pair.objects.get(pk=assignment.pair_id).vote_count == 0
    # and the client's retry stores the vote, once
    vote, created = services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
    again, created_again = services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
    assert created and not created_again and vote.pk == again.pk
    assert Pair.objects.get(pk=assignment.pair_id).vote_count == 1
