"""Hand-written SQL for what an annotator's client runs on every pair.

Authenticating a token, checking the project, leasing the next pair and
recording the vote run once or twice per pair per annotator, all day. On a
2-vCPU server the ORM spent about 0.7 ms of Python building each of these
queries, three to four times what PostgreSQL took to run it, and most of a
next+vote cycle (profile in docs/labeling.md). Here they are plain SQL that
runs on SQLite (3.35+, for RETURNING) and PostgreSQL alike, with two
differences. Row locks are PostgreSQL's only: SQLite serialises writers with
BEGIN IMMEDIATE (see config/settings.py), so there is nothing to lock. And
the lease and the vote's writes are one statement each on PostgreSQL (CTEs),
because there every statement is a round trip to another process, where
SQLite runs the same steps one by one in-process. The tests marked
`both_databases` run on both.

Rows come back as model instances through the converters the ORM itself
applies (`Loader`), so callers see ordinary models. The dashboard's fold
(dashboard/sql.py) builds its statements with the same helpers. Everything
else in the app uses the ORM; the logic stays in `labeling.services`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Model

from accounts.models import ApiToken
from accounts.selectors import PERMISSIONS_OF_USER, string_agg
from labeling.models import Annotator, Assignment, Choice, Pair, Project, Vote


class Loader:
    """Model instances from raw rows, with the ORM's own value converters.

    Columns are the given fields in the model's field order (what
    `Model.from_db` expects); fields left out are deferred, and load on
    access like any deferred field.
    """

    def __init__(self, model: type[Model], attnames: Sequence[str] | None = None):
        wanted = set(attnames) if attnames is not None else None
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if wanted is None or f.attname in wanted]
        self.attnames = [f.attname for f in self.fields]
        self._cols = [f.get_col(model._meta.db_table) for f in self.fields]
        self._converters: dict[str, list] = {}

    def columns(self, alias: str) -> str:
        return ", ".join(f'{alias}."{f.column}"' for f in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def instance(self, values: Sequence[Any]) -> Model:
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = self._converters[connection.vendor] = [
                [*connection.ops.get_db_converters(col), *col.field.get_db_converters(connection)] for col in self._cols
            ]
        converted = []
        for value, col, chain in zip(values, self._cols, converters):
            for convert in chain:
                value = convert(value, col, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.attnames, converted)


def for_update(of: str, *, skip_locked: bool = False) -> str:
    if not connection.features.has_select_for_update:
        return ""
    return f" FOR UPDATE OF {of}" + (" SKIP LOCKED" if skip_locked else "")


def db_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


@contextmanager
def cursor() -> Iterator[Any]:
    """A cursor in the current transaction for the fixed statements of the labeling loop.

    On PostgreSQL it binds parameters server-side, on Django's own
    connection: psycopg then prepares each statement on its second run
    (`prepare_threshold` in config/settings.py) and PostgreSQL stops planning
    it per request, about a fifth of an in-process next+vote. The ORM keeps
    Django's client-side binding, which some of its queries need. Errors come
    out as Django's database exceptions.
    """
    with connection.cursor() as django_cursor:  # connects, and runs Django's health check
        if connection.vendor != "postgresql":
            yield django_cursor
            return
        with connection.wrap_database_errors, psycopg.Cursor(django_cursor.connection) as server_cursor:
            yield server_cursor


def fetchone(sql: str, params: Sequence[Any]) -> tuple | None:
    with cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def fetchall(sql: str, params: Sequence[Any]) -> list[tuple]:
    with cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute(sql: str, params: Sequence[Any]) -> int:
    with cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount


# --------------------------------------------------------------------------- #
# Who is asking
# --------------------------------------------------------------------------- #
_TOKEN = Loader(ApiToken, ["id", "last_used_at"])
_USER = Loader(get_user_model())
_ANNOTATOR = Loader(Annotator)
_USER_ANNOTATOR = Annotator._meta.get_field("user").remote_field  # caches user.annotator


def token_user(*, key_hash: str) -> tuple[ApiToken, Model] | None:
    """A live token (id and last_used_at loaded) and its user, in one query.

    What every API call needs next rides along: `user.annotator` (None when
    the user has none, which reads as "no annotator") and, for a user who is
    not a superuser, the permission cache `has_perm` reads (see
    `labeling.auth_backends`).
    """
    user_table = get_user_model()._meta.db_table
    permissions = string_agg("ct.app_label || '.' || p.codename")
    row = fetchone(
        f"SELECT {_TOKEN.columns('t')}, {_USER.columns('u')}, {_ANNOTATOR.columns('a')},"
        f" (SELECT {permissions} FROM {PERMISSIONS_OF_USER.format(user='u.id')})"
        f' FROM labeling_apitoken t JOIN "{user_table}" u ON u.id = t.user_id'
        " LEFT JOIN labeling_annotator a ON a.user_id = u.id"
        " WHERE t.key_hash = %s AND t.revoked_at IS NULL",
        [key_hash],
    )
    if row is None:
        return None
    i, j, k = len(_TOKEN), len(_TOKEN) + len(_USER), len(_TOKEN) + len(_USER) + len(_ANNOTATOR)
    token, user = _TOKEN.instance(row[:i]), _USER.instance(row[i:j])
    annotator = _ANNOTATOR.instance(row[j:k]) if row[j] is not None else None
    _USER_ANNOTATOR.set_cached_value(user, annotator)
    if not user.is_superuser:  # a superuser's cache holds every permission: ModelBackend fills it
        user._perm_cache = set(row[k].split(",")) if row[k] else set()
    return token, user


def token_touch(*, token_id: int, now: datetime) -> None:
    execute("UPDATE labeling_apitoken SET last_used_at = %s WHERE id = %s", [db_datetime(now), token_id])


# --------------------------------------------------------------------------- #
# Projects
# --------------------------------------------------------------------------- #
_PROJECT = Loader(Project)


_PROJECT_WITH_MEMBERSHIP = (
    f"SELECT {_PROJECT.columns('p')}, EXISTS(SELECT 1 FROM labeling_project_members m"
    " WHERE m.project_id = p.id AND m.user_id = %s) FROM labeling_project p WHERE p.{key} = %s"
)
_PROJECT_WITH_MEMBERSHIP_BY = {key: _PROJECT_WITH_MEMBERSHIP.format(key=key) for key in ("slug", "id")}


def project_with_membership(
    *, user_id: int, slug: str | None = None, project_id: int | None = None
) -> tuple[Project, bool] | None:
    """The project with this slug (or id), and whether the user is one of its members."""
    key, value = ("slug", slug) if project_id is None else ("id", project_id)
    row = fetchone(_PROJECT_WITH_MEMBERSHIP_BY[key], [user_id, value])
    if row is None:
        return None
    return _PROJECT.instance(row[:-1]), bool(row[-1])


# --------------------------------------------------------------------------- #
# Leases
# --------------------------------------------------------------------------- #
_ASSIGNMENT = Loader(Assignment)
# What a client shows: the texts. Other pair fields load on access.
_PAIR_SHOWN = Loader(Pair, ["id", "project_id", "prompt", "response_a", "response_b", "split", "slots_taken"])


def _assignment_with_pair(row: Sequence[Any]) -> Assignment:
    assignment = _ASSIGNMENT.instance(row[: len(_ASSIGNMENT)])
    pair = _PAIR_SHOWN.instance(row[len(_ASSIGNMENT) :])
    Assignment._meta.get_field("pair").set_cached_value(assignment, pair)
    return assignment


def assignment_live(*, project_id: int, annotator_id: int) -> Assignment | None:
    """The annotator's live lease in the project (at most one: a partial unique index), pair loaded."""
    row = fetchone(
        f"SELECT {_ASSIGNMENT.columns('a')}, {_PAIR_SHOWN.columns('p')}"
        " FROM labeling_assignment a JOIN labeling_pair p ON p.id = a.pair_id"
        " WHERE a.project_id = %s AND a.annotator_id = %s AND a.state = 'live'",
        [project_id, annotator_id],
    )
    return None if row is None else _assignment_with_pair(row)


# The least-served open pair this annotator has not seen (leased or voted),
# archived pairs left out:
# the subquery walks the (project, slots_taken, rank) index in order. On
# PostgreSQL it locks its pick with SKIP LOCKED, so concurrent annotators take
# different pairs instead of queueing. Two kinds of pick (`PICKS`):
# - "pair": an ordinary pair whose votes plus leases are under K;
# - "gold": a gold pair (known answer), whatever its votes: every annotator
#   is to answer them, so K does not cap them; they walk their own partial index.
# A paused annotator (labeling.models.AnnotatorStanding) gets neither: the
# check is a one-time filter, so the common path stays one statement.
_PICK_SEEN = (
    " AND NOT EXISTS (SELECT 1 FROM labeling_assignment s WHERE s.pair_id = p.id AND s.annotator_id = %(annotator)s"
    " AND NOT s.repeat)"
    " AND NOT EXISTS (SELECT 1 FROM labeling_vote v WHERE v.pair_id = p.id AND v.annotator_id = %(annotator)s)"
    " AND NOT EXISTS (SELECT 1 FROM labeling_annotatorstanding st WHERE st.project_id = %(project)s"
    " AND st.annotator_id = %(annotator)s AND st.paused_at IS NOT NULL)"
)
_PICK_WHERES = {
    "pair": "SELECT p.id FROM labeling_pair p WHERE p.project_id = %(project)s AND p.slots_taken < %(k)s"
    " AND NOT p.archived AND p.gold = ''" + _PICK_SEEN,
    "gold": "SELECT p.id FROM labeling_pair p WHERE p.project_id = %(project)s AND p.gold <> ''"
    " AND NOT p.archived" + _PICK_SEEN,
}
PICKS = tuple(_PICK_WHERES)
_PICK_WHERE = _PICK_WHERES["pair"]
_PICK_ORDER = " ORDER BY p.slots_taken, p.rank LIMIT 1"
_LEASE_COLUMNS = 'project_id, pair_id, annotator_id, "left", state, served_at, expires_at, repeat'
_PAIR_SHOWN_NAMES = ", ".join(_PAIR_SHOWN.attnames)
# The statements below are built once, here, not per request.

# PostgreSQL: the annotator's live lease if they hold one; else pick, lease
# and take the slot. One statement, which is its own transaction (one round
# trip instead of six with the live-lease query, BEGIN and COMMIT). With a
# live lease the pick's one-time filter stops it before it reads a pair. The
# lease is inserted before the slot is taken, so a lease the one-live-lease
# index refuses (the same annotator asking twice at once) takes no slot; the
# pick's row lock keeps the count from moving in between.
LEASE_STATEMENTS_POSTGRESQL = {
    kind: (
        f"WITH live AS (SELECT {_ASSIGNMENT.columns('a')} FROM labeling_assignment a"
        "  WHERE a.project_id = %(project)s AND a.annotator_id = %(annotator)s AND a.state = 'live'),"
        f" pick AS ({where} AND NOT EXISTS (SELECT 1 FROM live){_PICK_ORDER} FOR UPDATE OF p SKIP LOCKED),"
        f" lease AS (INSERT INTO labeling_assignment ({_LEASE_COLUMNS})"
        "  SELECT %(project)s, pick.id, %(annotator)s, %(left)s, 'live', %(served)s, %(expires)s, false FROM pick"
        f"  ON CONFLICT DO NOTHING RETURNING {_ASSIGNMENT.columns('labeling_assignment')}),"
        " slot AS (UPDATE labeling_pair SET slots_taken = slots_taken + 1 WHERE id = (SELECT pair_id FROM lease)"
        f"  RETURNING {_PAIR_SHOWN_NAMES})"
        f" SELECT lease.*, {_PAIR_SHOWN.columns('slot')} FROM lease JOIN slot ON slot.id = lease.pair_id"
        f" UNION ALL SELECT live.*, {_PAIR_SHOWN.columns('p')} FROM live JOIN labeling_pair p ON p.id = live.pair_id"
    )
    for kind, where in _PICK_WHERES.items()
}
LEASE_STATEMENT_POSTGRESQL = LEASE_STATEMENTS_POSTGRESQL["pair"]
# SQLite: the same steps, one by one.
_SLOT_TAKE_SQLITE = {
    "pair": f"UPDATE labeling_pair SET slots_taken = slots_taken + 1 WHERE id = ({_PICK_WHERES['pair']}{_PICK_ORDER})"
    f" AND slots_taken < %(k)s RETURNING {_PAIR_SHOWN_NAMES}",
    "gold": f"UPDATE labeling_pair SET slots_taken = slots_taken + 1 WHERE id = ({_PICK_WHERES['gold']}{_PICK_ORDER})"
    f" RETURNING {_PAIR_SHOWN_NAMES}",
}
_LEASE_INSERT_SQLITE = (
    f"INSERT INTO labeling_assignment ({_LEASE_COLUMNS}) VALUES (%(project)s, %(pair)s, %(annotator)s,"
    " %(left)s, 'live', %(served)s, %(expires)s, false) ON CONFLICT DO NOTHING RETURNING id"
)

# A repeat check (labeling.services): the annotator's most recent vote, cast
# on a screen, on an ordinary pair, with at least %(between)s of their votes
# after it and no repeat of it yet. Their votes walk the (annotator, project)
# index; it runs for a few percent of the pairs served.
_REPEAT_PICK = (
    "SELECT v.pair_id, v.shown_left FROM labeling_vote v JOIN labeling_pair p ON p.id = v.pair_id"
    " WHERE v.annotator_id = %(annotator)s AND v.project_id = %(project)s AND v.shown_left IS NOT NULL"
    " AND p.gold = '' AND NOT p.archived"
    " AND v.id <= (SELECT w.id FROM labeling_vote w WHERE w.annotator_id = %(annotator)s"
    "  AND w.project_id = %(project)s ORDER BY w.id DESC LIMIT 1 OFFSET %(between)s)"
    " AND NOT EXISTS (SELECT 1 FROM labeling_assignment s WHERE s.pair_id = v.pair_id"
    "  AND s.annotator_id = %(annotator)s AND s.repeat)"
    " AND NOT EXISTS (SELECT 1 FROM labeling_annotatorstanding st WHERE st.project_id = %(project)s"
    "  AND st.annotator_id = %(annotator)s AND st.paused_at IS NOT NULL)"
    " ORDER BY v.id DESC LIMIT 1"
)
_REPEAT_INSERT = (
    f"INSERT INTO labeling_assignment ({_LEASE_COLUMNS}) VALUES (%(project)s, %(pair)s, %(annotator)s,"
    " %(left)s, 'live', %(served)s, %(expires)s, true) ON CONFLICT DO NOTHING RETURNING id"
)


# "N pairs left for you" (labeling.selectors.pairs_left_for_annotator): the
# pick's own filter and order, counted up to a cap, so it walks the same index
# range as the pick and stops at the cap, whatever the project's size.
PAIRS_OPEN_COUNT = f"SELECT count(*) FROM ({_PICK_WHERE}{_PICK_ORDER.replace('LIMIT 1', 'LIMIT %(cap)s')}) open_pairs"


def pairs_open_count(*, project_id: int, annotator_id: int | None, overlap_target: int, cap: int) -> int:
    """Open pairs (votes plus leases under K) this annotator has not seen, counted up to `cap`."""
    params = {"project": project_id, "k": overlap_target, "annotator": annotator_id or 0, "cap": cap}
    return fetchone(PAIRS_OPEN_COUNT, params)[0]


def lease_current_or_take(
    *,
    project_id: int,
    annotator_id: int,
    overlap_target: int,
    left: str,
    served_at: datetime,
    expires_at: datetime,
    pick: str = "pair",
) -> Assignment | None:
    """The annotator's live lease in the project, with its pair; else a new lease on
    the least-served open pair they have not seen (with `left`, `served_at` and
    `expires_at`). None if they hold no lease and no pair is open for them, or
    their own concurrent request's lease won the one-live-lease index (a partial
    unique index allows one per project).

    `pick` is "pair" (an ordinary pair) or "gold" (a gold pair, K not
    applied: see `PICKS`). A live lease is returned as found, even past its expiry: deciding what to
    do with it is the caller's. Taking a slot counts the lease in the pair's
    `slots_taken`, re-checked against K under the row's lock, so K holds under
    any interleaving. PostgreSQL runs one statement; SQLite, which serialises
    writers (BEGIN IMMEDIATE), runs the same steps in one transaction.
    """
    params = {
        "project": project_id,
        "k": overlap_target,
        "annotator": annotator_id,
        "left": left,
        "served": db_datetime(served_at),
        "expires": db_datetime(expires_at),
    }
    if connection.vendor == "postgresql":
        row = fetchone(LEASE_STATEMENTS_POSTGRESQL[pick], params)
        return None if row is None else _assignment_with_pair(row)
    with transaction.atomic():
        live = assignment_live(project_id=project_id, annotator_id=annotator_id)
        if live is not None:
            return live
        row = fetchone(_SLOT_TAKE_SQLITE[pick], params)
        if row is None:
            return None
        pair = _PAIR_SHOWN.instance(row)
        row = fetchone(_LEASE_INSERT_SQLITE, {**params, "pair": pair.pk})
        if row is None:  # this annotator's other request won the one-live-lease index
            pair_release_slot(pair_id=pair.pk)
            return None
    assignment = Assignment(
        id=row[0],
        project_id=project_id,
        pair=pair,
        annotator_id=annotator_id,
        left=left,
        state=Assignment.State.LIVE,
        served_at=served_at,
        expires_at=expires_at,
    )
    assignment._state.adding = False
    return assignment


def repeat_lease_take(
    *, project_id: int, annotator_id: int, between: int, served_at: datetime, expires_at: datetime
) -> Assignment | None:
    """The annotator's live lease if they hold one; else a repeat-check lease: the pair of
    their most recent vote with at least `between` of their votes after it and no repeat yet,
    shown with the sides swapped. None when no vote qualifies (or a concurrent request of
    theirs won the one-live-lease index). A repeat takes no slot: it adds no vote."""
    params = {
        "project": project_id,
        "annotator": annotator_id,
        "between": between,
        "served": db_datetime(served_at),
        "expires": db_datetime(expires_at),
    }
    with transaction.atomic():
        live = assignment_live(project_id=project_id, annotator_id=annotator_id)
        if live is not None:
            return live
        row = fetchone(_REPEAT_PICK, params)
        if row is None:
            return None
        pair_id, shown_left = row
        swapped = "b" if shown_left == "a" else "a"
        if fetchone(_REPEAT_INSERT, {**params, "pair": pair_id, "left": swapped}) is None:
            return None
        return assignment_live(project_id=project_id, annotator_id=annotator_id)


def pair_release_slot(*, pair_id: int) -> None:
    execute("UPDATE labeling_pair SET slots_taken = slots_taken - 1 WHERE id = %s", [pair_id])


# --------------------------------------------------------------------------- #
# Votes
# --------------------------------------------------------------------------- #
def assignment_lock_for_vote(*, assignment_id: int) -> Assignment | None:
    """The assignment, locked, with `.project` loaded.

    Only the assignment row is locked: locking the project too would
    serialise every vote in the project.
    """
    row = fetchone(
        f"SELECT {_ASSIGNMENT.columns('a')}, {_PROJECT.columns('j')}"
        " FROM labeling_assignment a JOIN labeling_project j ON j.id = a.project_id WHERE a.id = %s" + for_update("a"),
        [assignment_id],
    )
    if row is None:
        return None
    assignment, project = _ASSIGNMENT.instance(row[: len(_ASSIGNMENT)]), _PROJECT.instance(row[len(_ASSIGNMENT) :])
    Assignment._meta.get_field("project").set_cached_value(assignment, project)
    return assignment


_TALLY_COLUMNS = {Choice.A: "votes_a", Choice.B: "votes_b"}
_VOTE_INSERT = (
    "INSERT INTO labeling_vote (project_id, pair_id, annotator_id, assignment_id, choice, shown_left,"
    " strength, rationale, latency_ms, created_at, in_aggregates)"
    " VALUES (%(project)s, %(pair)s, %(annotator)s, %(lease)s, %(choice)s, %(left)s, %(strength)s, %(rationale)s,"
    " %(latency)s, %(now)s, %(in_aggregates)s) RETURNING id"
)
_LEASE_VOTED = "UPDATE labeling_assignment SET state = 'voted' WHERE id = %(lease)s"
# The pair's counters, by choice: ties and both-bad count as ties on the pair.
_PAIR_COUNT = {
    choice.value: f"UPDATE labeling_pair SET vote_count = vote_count + 1, {column} = {column} + 1 WHERE id = %(pair)s"
    " RETURNING gold"
    for choice in Choice
    for column in [_TALLY_COLUMNS.get(choice, "votes_tie")]
}
# Not durable, a vote's transaction runs set_config(..., true): SET LOCAL as an
# expression, so the one-statement vote carries it rather than one more round
# trip. It lets the transaction's commit return before the disk's flush.
_SOFT_COMMIT = "set_config('synchronous_commit', 'off', true)"
# The same counters as _PAIR_COUNT, as expressions of the stored vote's choice.
_PAIR_COUNT_BY_VOTE_CHOICE = ", ".join(
    [f"{column} = p.{column} + (vote.choice = '{choice.value}')::integer" for choice, column in _TALLY_COLUMNS.items()]
    + [f"votes_tie = p.votes_tie + (vote.choice NOT IN ({', '.join(repr(c.value) for c in _TALLY_COLUMNS)}))::integer"]
)


# PostgreSQL: the common vote -- on this annotator's live lease, with input
# the project accepts -- as one statement in autocommit, its own transaction:
# 2 round trips where the full path (lock, then vote_record) takes 5 with
# BEGIN and COMMIT. The lease's UPDATE is both its row lock and the check of
# its state: a concurrent second submit waits for the first, then finds the
# lease voted and gets no row. Any other case gets no row and writes
# nothing, and the caller takes the full path, which tells the cases apart.
# The project's conditions mirror services._validate_vote_for_project; the
# latency rule mirrors services.vote_submit's.
_VOTE_ON_LIVE_LEASE = (
    "WITH lease AS (UPDATE labeling_assignment a SET state = 'voted' FROM labeling_project j"
    "  WHERE a.id = %(lease)s AND a.annotator_id = %(annotator)s AND a.state = 'live' AND NOT a.repeat"
    "  AND j.id = a.project_id"
    "  AND (j.allow_tie OR %(choice)s <> 'tie') AND (j.allow_both_bad OR %(choice)s <> 'both_bad')"
    "  AND (j.ask_strength OR %(strength)s::integer IS NULL) AND (j.ask_rationale OR %(rationale)s = '')"
    '  RETURNING a.id, a.project_id, a.pair_id, a."left",'
    "   GREATEST(0, floor(extract(epoch FROM %(now)s - a.served_at) * 1000))::integer AS server_ms),"
    " vote AS (INSERT INTO labeling_vote (project_id, pair_id, annotator_id, assignment_id, choice, shown_left,"
    "  strength, rationale, latency_ms, created_at, in_aggregates)"
    "  SELECT project_id, pair_id, %(annotator)s, id,"
    '   CASE "left" WHEN \'a\' THEN %(choice_if_left_a)s ELSE %(choice_if_left_b)s END, "left",'
    "   %(strength)s, %(rationale)s,"
    "   CASE WHEN %(latency)s::integer BETWEEN 0 AND server_ms THEN %(latency)s::integer ELSE server_ms END,"
    "   %(now)s, false FROM lease"
    "  RETURNING id, project_id, pair_id, choice, shown_left, latency_ms),"
    f" pair AS (UPDATE labeling_pair p SET vote_count = p.vote_count + 1, {_PAIR_COUNT_BY_VOTE_CHOICE}"
    "  FROM vote WHERE p.id = vote.pair_id RETURNING p.gold)"
    " SELECT id, project_id, pair_id, choice, shown_left, latency_ms, (SELECT gold FROM pair), {commit} FROM vote"
)
_VOTE_ON_LIVE_LEASE_POSTGRESQL = {
    durable: _VOTE_ON_LIVE_LEASE.format(commit="NULL" if durable else _SOFT_COMMIT) for durable in (True, False)
}


def vote_record_on_live_lease(
    *,
    assignment_id: int,
    annotator_id: int,
    choice: str,
    choice_if_left: dict[str, str],
    strength: int | None,
    rationale: str,
    latency_ms: int | None,
    now: datetime,
    durable: bool = True,
) -> Vote | None:
    """The vote, if the assignment is this annotator's live lease and its project
    accepts the input: stored with the lease marked voted and the pair's counters,
    as `vote_record` does. None, having written nothing, in any other case, and
    always on SQLite (whose full path runs in-process, with no round trips to save).

    `choice` is the screen choice, `choice_if_left` its pair terms by the side
    shown left. Run it outside a transaction: it is meant to be its own.
    """
    if connection.vendor != "postgresql":
        return None
    row = fetchone(
        _VOTE_ON_LIVE_LEASE_POSTGRESQL[durable],
        {
            "lease": assignment_id,
            "annotator": annotator_id,
            "choice": choice,
            "choice_if_left_a": choice_if_left["a"],
            "choice_if_left_b": choice_if_left["b"],
            "strength": strength,
            "rationale": rationale,
            "latency": latency_ms,
            "now": db_datetime(now),
        },
    )
    if row is None:
        return None
    vote_id, project_id, pair_id, pair_choice, shown_left, latency, gold = row[:7]
    vote = Vote(
        id=vote_id,
        project_id=project_id,
        pair_id=pair_id,
        annotator_id=annotator_id,
        assignment_id=assignment_id,
        choice=pair_choice,
        shown_left=shown_left,
        strength=strength,
        rationale=rationale,
        latency_ms=latency,
        created_at=now,
        in_aggregates=False,
    )
    vote._state.adding = False
    vote.pair_gold = gold  # whether the vote was on a gold pair: the caller checks the annotator then
    return vote


def vote_record(
    *,
    assignment: Assignment,
    choice: str,
    strength: int | None,
    rationale: str,
    latency_ms: int,
    now: datetime,
    durable: bool = True,
) -> Vote:
    """Store a vote on a locked lease whose slot is held: the vote (not in the
    dashboard aggregates yet: they fold it in later), the lease marked voted,
    the pair's counters. Not for a repeat check (services._repeat_answer).

    The full path's writes, in the caller's transaction. On PostgreSQL the
    common vote takes `vote_record_on_live_lease` instead, so this runs there
    only for a late vote on an expired lease, and is three plain statements
    on both databases. With `durable` False, the transaction's commit does
    not wait for the disk on PostgreSQL (LABELING_DURABLE_VOTES in
    config/settings.py).
    """
    params = {
        "project": assignment.project_id,
        "pair": assignment.pair_id,
        "annotator": assignment.annotator_id,
        "lease": assignment.pk,
        "choice": choice,
        "left": assignment.left,
        "strength": strength,
        "rationale": rationale,
        "latency": latency_ms,
        "now": db_datetime(now),
        "in_aggregates": False,
    }
    if not durable and connection.vendor == "postgresql":
        fetchone(f"SELECT {_SOFT_COMMIT}", [])
    vote_id = fetchone(_VOTE_INSERT, params)[0]
    execute(_LEASE_VOTED, params)
    (gold,) = fetchone(_PAIR_COUNT[choice], params)
    vote = Vote(
        id=vote_id,
        project_id=assignment.project_id,
        pair_id=assignment.pair_id,
        annotator_id=assignment.annotator_id,
        assignment=assignment,
        choice=choice,
        shown_left=assignment.left,
        strength=strength,
        rationale=rationale,
        latency_ms=latency_ms,
        created_at=now,
        in_aggregates=False,
    )
    vote._state.adding = False
    vote.pair_gold = gold  # as in vote_record_on_live_lease
    return vote


def assignment_set_state(*, assignment_id: int, state: str) -> None:
    execute("UPDATE labeling_assignment SET state = %s WHERE id = %s", [state, assignment_id])


def pair_retake_slot(*, pair_id: int, overlap_target: int) -> bool:
    """Take a slot back for an expired lease if the pair still has room."""
    return bool(
        execute(
            "UPDATE labeling_pair SET slots_taken = slots_taken + 1 WHERE id = %s AND slots_taken < %s",
            [pair_id, overlap_target],
        )
    )


# --------------------------------------------------------------------------- #
# Acquisition
# --------------------------------------------------------------------------- #
def pair_ranks_set(*, ranks: Sequence[tuple[int, int]]) -> None:
    """Set the rank of each (pair id, rank), in one statement on PostgreSQL, one executemany on SQLite."""
    if not ranks:
        return
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s::bigint)"] * len(ranks))
        execute(
            f"UPDATE labeling_pair p SET rank = v.rank FROM (VALUES {values}) AS v(id, rank) WHERE p.id = v.id",
            [x for pair in ranks for x in pair],
        )
        return
    with cursor() as cur:
        cur.executemany("UPDATE labeling_pair SET rank = %s WHERE id = %s", [(rank, pk) for pk, rank in ranks])
