"""Django's PostgreSQL backend, with a connection health check that costs no round trip.

With persistent connections and CONN_HEALTH_CHECKS, Django sends `SELECT 1`
before the first query of every request, to find a connection the server
has dropped (a restart, an idle timeout, pg_terminate_backend). That is one
more round trip, and one more wait for a thread on a busy server, in every
labeling request. A server that drops a connection closes its socket,
usually after a FATAL message; an idle connection otherwise has nothing to
read. So a readable socket, or one psycopg already knows is broken, is
enough to tell: Django then closes the connection and opens a new one.
(A silently dead peer, with no FIN, is left to TCP keepalives; `SELECT 1`
would hang on it too.)
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper
from psycopg import pq


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            # Between requests a connection is idle; anything else is left over from a failure.
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
