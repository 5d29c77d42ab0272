"""Writes for labeling: pairs in, leases out, votes back.

Every function here is `<entity>_<action>(*, keyword_only)` and owns its
transaction. Counters on `Pair` (slots_taken, vote_count, votes_a/b/tie)
change only here, in the same transaction as the rows they count, so that
selection and the dashboard never aggregate over the vote table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from labeling import selectors, signals, sql
from labeling.models import (
    Annotator,
    AnnotatorStanding,
    Assignment,
    Choice,
    Pair,
    Project,
    RepeatCheck,
    Side,
    Split,
    Vote,
    VoteChange,
)
from labeling.pseudonyms import pseudonyms_resolve
from lib.errors import Conflict, Forbidden, InvalidInput, NotFound
from preferences.agreement import wilson_interval
from preferences.labels import Tally
from preferences.records import PreferenceRecord
from preferences.splits import split_for_prompt

SCREEN_CHOICES = ("left", "right", "tie", "both_bad")


# --------------------------------------------------------------------------- #
# Annotators
# --------------------------------------------------------------------------- #
def annotator_for_user(*, user: AbstractBaseUser) -> Annotator:
    annotator = getattr(user, "annotator", None)
    if annotator is not None:
        return annotator
    try:
        with transaction.atomic():
            return Annotator.objects.create(user=user)
    except IntegrityError:  # created by a concurrent request
        return Annotator.objects.get(user=user)


def annotators_for_external(*, external_ids: Iterable[str]) -> dict[str, Annotator]:
    """Annotators by the names an import file gives them.

    A name that is the export pseudonym of someone who votes in this app
    resolves to that person (a round trip must not count them twice); any
    other name is an external identity, created on first sight.
    """
    wanted = set(external_ids)
    app_users = pseudonyms_resolve(
        names=wanted, annotator_ids=Annotator.objects.filter(user__isnull=False).values_list("pk", flat=True)
    )
    by_pk = Annotator.objects.in_bulk(app_users.values())
    found = {name: by_pk[pk] for name, pk in app_users.items()}
    wanted -= found.keys()
    found.update({a.external_id: a for a in Annotator.objects.filter(external_id__in=wanted)})
    missing = [Annotator(external_id=x) for x in wanted - found.keys()]
    if missing:
        Annotator.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({a.external_id: a for a in Annotator.objects.filter(external_id__in=wanted)})
    return found


# --------------------------------------------------------------------------- #
# Projects and pairs
# --------------------------------------------------------------------------- #
# What an admin sets on a project (the form, the API, project_create's options).
PROJECT_FIELDS = (
    "name",
    "instructions",
    "overlap_target",
    "allow_tie",
    "allow_both_bad",
    "ask_strength",
    "ask_rationale",
    "lease_seconds",
    "test_percent",
    "acquisition",
    "exploration_percent",
    "gold_percent",
    "repeat_percent",
    "gold_pause_below",
    "gold_min_votes",
)


def _project_check(project: Project) -> None:
    """Field validation as InvalidInput, naming each field that is wrong."""
    try:
        project.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(f"{Project._meta.get_field(k).verbose_name}: {' '.join(v)}" for k, v in exc.message_dict.items())
        ) from None


def _unknown_fields(options: dict) -> None:
    unknown = sorted(set(options) - set(PROJECT_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown project field(s): {', '.join(unknown)}.")


def project_create(*, slug: str, name: str = "", **options) -> Project:
    """A new project; bad input is InvalidInput and a taken slug a Conflict, writing nothing."""
    _unknown_fields(options)
    project = Project(slug=slug, name=name or slug, **options)
    _project_check(project)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:  # the slug's unique index; checked here rather than before, so a race cannot slip by
        raise Conflict(f"A project with the slug '{slug}' exists already.") from None
    return project


def pair_archive(*, pair: Pair, archived: bool = True) -> Pair:
    """Take a pair out of labeling and training (or put it back). Its votes stay:
    a pair with votes cannot be deleted, since votes are the product."""
    Pair.objects.filter(pk=pair.pk).update(archived=archived)
    pair.refresh_from_db(fields=["archived"])
    return pair


def project_update(*, project: Project, **changes) -> Project:
    """Change a project's settings; bad input writes nothing.

    The held-out share (`test_percent`) is fixed once the project has pairs:
    each pair's split was drawn from it when the pair was stored, and moving
    it would move prompts between train and held-out, so versions measured
    before and after would not be comparable. The slug never changes (it is
    in every URL and export).
    """
    _unknown_fields(changes)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if "test_percent" in changes and changes["test_percent"] != locked.test_percent:
            pairs = Pair.objects.filter(project=locked).count()
            if pairs:
                raise InvalidInput(
                    f"The held-out share is fixed once a project has pairs (this one has {pairs:,}): it is "
                    f"{locked.test_percent}%, and changing it would move prompts between train and held-out."
                )
        for name, value in changes.items():
            setattr(locked, name, value)
        _project_check(locked)
        locked.save(update_fields=list(changes) or None)
    return locked


@dataclass(frozen=True)
class MembersAdded:
    added: list[str]
    already_members: list[str]
    cannot_label: list[str]  # members without the annotator permission: they see the project but cannot label


def _users_named(names: Sequence[str]) -> list[AbstractBaseUser]:
    """Active users by username, or by email for a name with an @; unknown or ambiguous
    names are one InvalidInput naming them all."""
    User = get_user_model()
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if not wanted:
        raise InvalidInput("Name at least one user (a username or an email address).")
    if len(wanted) > 1000:
        raise InvalidInput("Add at most 1,000 members at once.")
    emails = [n for n in wanted if "@" in n]
    found = {u.get_username(): u for u in User.objects.filter(is_active=True, username__in=wanted)}
    by_email: dict[str, list] = {}
    if emails:
        email_q = Q()
        for e in emails:
            email_q |= Q(email__iexact=e)
        for u in User.objects.filter(email_q, is_active=True):
            by_email.setdefault(u.email.lower(), []).append(u)
    users, unknown, ambiguous = [], [], []
    for name in wanted:
        if name in found:
            users.append(found[name])
        elif len(by_email.get(name.lower(), [])) == 1:
            users.append(by_email[name.lower()][0])
        elif by_email.get(name.lower()):
            ambiguous.append(name)
        else:
            unknown.append(name)
    problems = []
    if unknown:
        problems.append(f"no active user named {', '.join(unknown)}")
    if ambiguous:
        problems.append(f"more than one user has the email {', '.join(ambiguous)}: use their usernames")
    if problems:
        raise InvalidInput("Nobody was added: " + "; ".join(problems) + ".")
    return list({u.pk: u for u in users}.values())


def project_members_add(*, project: Project, names: Sequence[str]) -> MembersAdded:
    """Make these users (usernames or emails) members of the project, all or none."""
    users = _users_named(names)
    current = set(project.members.filter(pk__in=[u.pk for u in users]).values_list("pk", flat=True))
    new = [u for u in users if u.pk not in current]
    project.members.add(*new)
    return MembersAdded(
        added=[u.get_username() for u in new],
        already_members=[u.get_username() for u in users if u.pk in current],
        cannot_label=[u.get_username() for u in users if not u.has_perm("labeling.label_pairs")],
    )


def project_member_remove(*, project: Project, username: str) -> None:
    """Take a member off the project. Their votes stay; a pair leased to them goes back to the pool."""
    user = project.members.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        raise NotFound(f"{username} is not a member of this project.")
    with transaction.atomic():
        project.members.remove(user)
        annotator = Annotator.objects.filter(user=user).first()
        if annotator is not None:
            _pairs_count(_leases_give_back(project_id=project.pk, annotator_id=annotator.pk))


def pair_content_hash(*, prompt: str, response_a: str, response_b: str) -> str:
    """Identity of a pair's content; the order of the two responses does not matter."""
    first, second = sorted((response_a, response_b))
    digest = hashlib.sha256()
    for part in (prompt, first, second):
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def pair_split_for_prompt(*, prompt: str, test_percent: int) -> str:
    """Train or test, fixed by the prompt alone, so one prompt never lands on both sides."""
    return split_for_prompt(prompt, test_percent)


# Ranks live in [0, RANK_SPACE): a pair's own rank is the first 15 hex digits
# of its content hash, uniform over that range.
RANK_SPACE = 16**15


def _rank(content_hash: str) -> int:
    # Serving order: deterministic but unrelated to import order.
    return int(content_hash[:15], 16)


@dataclass
class ImportCounts:
    created: int = 0
    duplicates: int = 0
    votes: int = 0

    def add(self, other: ImportCounts) -> None:
        self.created += other.created
        self.duplicates += other.duplicates
        self.votes += other.votes


def pairs_import_batch(
    *, project: Project, records: Sequence[PreferenceRecord], shuffle_sides: bool, gold_first: bool = False
) -> ImportCounts:
    """Write one batch of parsed records, idempotently by content hash.

    New pairs are created with their votes. A pair already in the project
    (or twice in the batch) counts as a duplicate; its votes are added only
    for annotators who have not voted on it yet. With `shuffle_sides`, the
    side of each new pair is flipped by a bit of its content hash, so that a
    file whose first response is always the chosen one (TRL shape) does not
    leave `response_a` always the winner.

    Gold pairs: a record's `gold` ("a"/"b", pair terms) is stored on a new
    pair; `gold_first` makes every record gold with its first response the
    answer (a TRL file imported with --gold: chosen is the answer, and the
    row's label is not stored as a vote). A pair
    stored already keeps the gold answer it has, or has not: making a voted
    pair gold afterwards would move its votes out of counts already made.
    """
    counts = ImportCounts()
    by_hash: dict[str, PreferenceRecord] = {}
    for record in records:
        h = pair_content_hash(prompt=record.prompt, response_a=record.response_a, response_b=record.response_b)
        if gold_first:  # the row's label is the answer, not anyone's vote
            record = dataclasses.replace(record, votes=(), gold="a")
        if h in by_hash:
            counts.duplicates += 1
            by_hash[h] = _merge_votes(by_hash[h], record)
            continue
        if shuffle_sides and int(h[-1], 16) % 2:
            record = record.swapped()  # its gold answer too
        by_hash[h] = record

    with transaction.atomic():
        found = _pair_ids_by_hash(project, list(by_hash))
        existing = (
            {
                p.content_hash: p
                for p in Pair.objects.filter(pk__in=found.values()).only("id", "content_hash", "response_a")
            }
            if found
            else {}
        )
        counts.duplicates += len(existing)
        annotator_ids = {
            name: annotator.pk
            for name, annotator in annotators_for_external(
                external_ids={v.annotator for r in by_hash.values() for v in r.votes}
            ).items()
        }
        fresh = {h: record for h, record in by_hash.items() if h not in existing}
        splits = {
            h: pair_split_for_prompt(prompt=r.prompt, test_percent=project.test_percent) for h, r in fresh.items()
        }
        pair_ids = _new_pairs_insert(project, fresh, splits)
        counts.created = len(pair_ids)
        vote_rows = [
            (project.pk, pair_ids[h], annotator_ids[v.annotator], v.choice, v.strength, v.rationale, False)
            for h, record in fresh.items()
            for v in record.votes
        ]
        vote_rows += _votes_for_duplicates(project, existing, by_hash, annotator_ids)
        _rows_insert(Vote, _VOTE_COLUMNS, vote_rows)
        counts.votes = len(vote_rows)
        if vote_rows:
            # Stored outside the dashboard aggregates; its receiver folds them
            # in within this transaction, so no figure counts half an import.
            signals.votes_imported.send(sender=Project, project_id=project.pk)
        if pair_ids:
            signals.pairs_imported.send(sender=Project, project_id=project.pk)
    return counts


# Columns the import writes, in the order of the value tuples below; every
# other column takes its default.
_PAIR_COLUMNS = (
    "project_id",
    "prompt",
    "response_a",
    "response_b",
    "content_hash",
    "external_id",
    "metadata",
    "split",
    "rank",
    "slots_taken",
    "vote_count",
    "votes_a",
    "votes_b",
    "votes_tie",
    "gold",
)
_VOTE_COLUMNS = ("project_id", "pair_id", "annotator_id", "choice", "strength", "rationale", "in_aggregates")


def _new_pairs_insert(project: Project, fresh: dict[str, PreferenceRecord], splits: dict[str, str]) -> dict[str, int]:
    """Insert the pairs not stored yet, their counters already counting their
    votes; returns their ids by content hash."""
    rows = []
    for h, record in fresh.items():
        n_a, n_b, n_tie = Tally.of(v.choice for v in record.votes).as_tuple()
        votes = len(record.votes)
        rows.append(
            (
                project.pk,
                record.prompt,
                record.response_a,
                record.response_b,
                h,
                record.external_id or "",
                record.metadata,
                splits[h],
                _rank(h),
                votes,
                votes,
                n_a,
                n_b,
                n_tie,
                record.gold or "",
            )
        )
    _rows_insert(Pair, _PAIR_COLUMNS, rows)
    return _pair_ids_by_hash(project, list(fresh))


def _rows_insert(model, columns: Sequence[str], rows: list[Sequence]) -> None:
    """INSERT rows, each a sequence of values for `columns` (attnames), with one executemany.

    Imports write hundreds of thousands of rows: bulk_create compiles SQL
    for every value and builds an instance per row, which costs several
    times the database's own work. Here only JSON and datetime values are
    converted for the database. Fields `columns` leave out take their
    defaults, prepared once; created_at is one timestamp for the batch.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    given = [model._meta.get_field(name) for name in columns]
    omitted = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in columns]
    now = timezone.now()
    tail = [f.get_db_prep_save(now if f.attname == "created_at" else f.get_default(), connection) for f in omitted]
    params = [[*row, *tail] for row in rows]
    for i, field in enumerate(given):
        if field.get_internal_type() in ("JSONField", "DateTimeField"):
            _column_prepare(params, i, field, connection)
    fields = given + omitted
    statement = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.executemany(statement, params)


def _column_prepare(params: list[list], i: int, field, connection) -> None:
    """Convert column `i` of every row for the database, in place.

    Most imported rows have no metadata: the empty JSON object is converted
    once, not once per row.
    """
    empty = field.get_db_prep_save({}, connection) if field.get_internal_type() == "JSONField" else None
    for param in params:
        value = param[i]
        param[i] = empty if empty is not None and value == {} else field.get_db_prep_save(value, connection)


def _pair_ids_by_hash(project: Project, hashes: list[str], chunk: int = 2000) -> dict[str, int]:
    """Ids of the project's pairs with these content hashes (raw SQL: an ORM `__in`
    over thousands of values spends more time preparing them than querying)."""
    connection = connections[router.db_for_read(Pair)]
    qn = connection.ops.quote_name
    table, hash_col = qn(Pair._meta.db_table), qn(Pair._meta.get_field("content_hash").column)
    project_col = qn(Pair._meta.get_field("project").column)
    out: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(hashes), chunk):
            part = hashes[start : start + chunk]
            cursor.execute(
                f"SELECT {hash_col}, {qn('id')} FROM {table} WHERE {project_col} = %s "
                f"AND {hash_col} IN ({', '.join(['%s'] * len(part))})",
                [project.pk, *part],
            )
            out.update(cursor.fetchall())
    return out


def _merge_votes(kept: PreferenceRecord, extra: PreferenceRecord) -> PreferenceRecord:
    """Votes (and a gold answer the kept row lacks) of a repeated row on the same content, in the kept
    row's side order."""
    if extra.response_a != kept.response_a:
        extra = extra.swapped()
    have = {v.annotator for v in kept.votes}
    added = tuple(v for v in extra.votes if v.annotator not in have)
    return dataclasses.replace(kept, votes=kept.votes + added, gold=kept.gold or extra.gold)


def _votes_for_duplicates(project, existing: dict[str, Pair], by_hash, annotator_ids: dict[str, int]) -> list[tuple]:
    """Votes (as `_VOTE_COLUMNS` tuples) on pairs that were already stored, from
    annotators new to them; the pairs' counters are raised to match."""
    if not existing:
        return []
    voted = set(Vote.objects.filter(pair__in=existing.values()).values_list("pair_id", "annotator_id"))
    votes = []
    for h, pair in existing.items():
        record = by_hash[h]
        if record.response_a != pair.response_a:  # stored with the other side first
            record = record.swapped()
        added = [v for v in record.votes if (pair.pk, annotator_ids[v.annotator]) not in voted]
        votes += [
            (project.pk, pair.pk, annotator_ids[v.annotator], v.choice, v.strength, v.rationale, False) for v in added
        ]
        if added:
            n_a, n_b, n_tie = Tally.of(v.choice for v in added).as_tuple()
            Pair.objects.filter(pk=pair.pk).update(
                slots_taken=F("slots_taken") + len(added),
                vote_count=F("vote_count") + len(added),
                votes_a=F("votes_a") + n_a,
                votes_b=F("votes_b") + n_b,
                votes_tie=F("votes_tie") + n_tie,
            )
    return votes


# --------------------------------------------------------------------------- #
# Leases
# --------------------------------------------------------------------------- #
PAUSED_MESSAGE = (
    "You are paused on this project: your answers to its check pairs fell below the accuracy it requires, "
    "so it serves you no more pairs for now. Contact {contact} to be reinstated."
)
# Pairs between a vote and its repeat check, at the least.
REPEAT_AFTER = 20
# Draws the kind of each pair served (ordinary, gold, repeat); tests seed it.
_draw = random.Random()


class AnnotatorPaused(Forbidden):
    """The annotator is paused on the project: no pairs until an admin reinstates them."""


def assignment_next(*, project: Project, user: AbstractBaseUser, now: datetime | None = None) -> Assignment | None:
    """The annotator's current lease, or a new one.

    Most leases are on the least-served open pair. A share of them
    (`project.gold_percent`) is on a gold pair the annotator has not seen,
    and another (`project.repeat_percent`) repeats a pair they voted on at
    least REPEAT_AFTER pairs ago, sides swapped (a repeat check); when that
    kind has nothing for them, an ordinary pair is served. The leases look
    alike to the annotator.

    Never a pair this annotator has seen (voted, skipped or leased; a repeat
    check aside), never an ordinary pair whose votes plus live leases have
    reached K. Safe under concurrency: the slot is taken under the pick's row
    lock, taken with SKIP LOCKED on PostgreSQL (`sql.lease_current_or_take`),
    and a partial unique index allows one live lease per annotator and
    project. The statements are hand-written SQL: this runs for every pair
    served. AnnotatorPaused (403) for an annotator paused on the project.
    """
    now = now or timezone.now()
    annotator = annotator_for_user(user=user)
    assignment = _lease(project=project, annotator=annotator, now=now)
    if assignment is not None and assignment.expires_at <= now:  # their live lease, left past its time
        assignments_reclaim_expired(now=now, ids=[assignment.pk])
        assignment = _lease(project=project, annotator=annotator, now=now)
    # Expired leases are reclaimed only when the pool looks empty: while open
    # pairs remain, a stale lease costs nothing, and skipping the sweep keeps
    # the common path to one statement.
    if assignment is None and assignments_reclaim_expired(now=now, project=project):
        assignment = _lease(project=project, annotator=annotator, now=now)
    if assignment is None and connection.vendor == "postgresql":
        assignment = _lease_past_locks(project=project, annotator=annotator, now=now)
    if assignment is None and selectors.annotator_is_paused(project=project, annotator=annotator):
        raise AnnotatorPaused(PAUSED_MESSAGE.format(contact=selectors.project_contact_text(project=project)))
    return assignment


LOCKED_RETRIES = 5


def _lease_past_locks(*, project: Project, annotator: Annotator, now: datetime) -> Assignment | None:
    """Try again while pairs are open but were locked when the pick looked.

    The pick skips rows another transaction holds (SKIP LOCKED): another
    annotator's lease for a moment, or a chunk of a re-rank (`pairs_rerank`)
    for the length of its UPDATE. "Nothing left" would then be false. A plain
    read waits on no lock, so while it still sees an open pair, lease again
    after a short pause. Runs only when the pick found nothing, so the common
    path is untouched; at the real end of a project it costs one count.
    """
    for attempt in range(LOCKED_RETRIES):
        if not sql.pairs_open_count(
            project_id=project.pk, annotator_id=annotator.pk, overlap_target=project.overlap_target, cap=1
        ):
            return None
        time.sleep(0.01 * (attempt + 1))
        assignment = _lease(project=project, annotator=annotator, now=now)
        if assignment is not None:
            return assignment
    return None


def _lease_kind(project: Project) -> str:
    """What to serve next: "gold", "repeat" or "pair", at the project's rates."""
    x = _draw.random() * 100
    if x < project.gold_percent:
        return "gold"
    if x < project.gold_percent + project.repeat_percent:
        return "repeat"
    return "pair"


def _lease(*, project: Project, annotator: Annotator, now: datetime) -> Assignment | None:
    expires_at = now + timedelta(seconds=project.lease_seconds)
    kind = _lease_kind(project)
    if kind == "repeat":
        assignment = sql.repeat_lease_take(
            project_id=project.pk, annotator_id=annotator.pk, between=REPEAT_AFTER, served_at=now, expires_at=expires_at
        )
        if assignment is not None:
            return assignment
    for pick in ("gold", "pair") if kind == "gold" else ("pair",):
        assignment = sql.lease_current_or_take(
            project_id=project.pk,
            annotator_id=annotator.pk,
            overlap_target=project.overlap_target,
            left=secrets.choice((Side.A, Side.B)),
            served_at=now,
            expires_at=expires_at,
            pick=pick,
        )
        if assignment is not None:
            return assignment
    # Nothing open for them, or the same annotator asked twice at once and
    # the other request's lease won the one-live-lease index: hand that one over.
    return sql.assignment_live(project_id=project.pk, annotator_id=annotator.pk)


def assignments_reclaim_expired(
    *, now: datetime | None = None, project: Project | None = None, ids: list[int] | None = None, limit: int = 500
) -> int:
    """Expire leases past their time and give their slots back to the pool."""
    now = now or timezone.now()
    with transaction.atomic():
        stale = Assignment.objects.filter(state=Assignment.State.LIVE, expires_at__lte=now)
        if project is not None:
            stale = stale.filter(project=project)
        if ids is not None:
            stale = stale.filter(pk__in=ids)
        rows = list(
            stale.select_for_update(skip_locked=True)
            .order_by("expires_at")
            .values_list("pk", "pair_id", "repeat")[:limit]
        )
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _, _ in rows], state=Assignment.State.LIVE).update(
            state=Assignment.State.EXPIRED
        )
        per_pair = Counter(pair_id for _, pair_id, repeat in rows if not repeat)  # a repeat check holds no slot
        for n, pair_ids in _group_by_count(per_pair).items():
            Pair.objects.filter(pk__in=pair_ids).update(slots_taken=F("slots_taken") - n)
    return len(rows)


def _group_by_count(counter: Counter) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for key, n in counter.items():
        grouped.setdefault(n, []).append(key)
    return grouped


def _owned_assignment_for_update(*, assignment_id: int, user: AbstractBaseUser) -> Assignment:
    """The user's assignment, locked, with its project loaded."""
    annotator = annotator_for_user(user=user)
    assignment = sql.assignment_lock_for_vote(assignment_id=assignment_id)
    if assignment is None or assignment.annotator_id != annotator.pk:
        # Not yours (or not there): the same answer either way, so ids leak nothing.
        raise Conflict("This pair is not assigned to you.")
    return assignment


def assignment_skip(*, assignment_id: int, user: AbstractBaseUser) -> None:
    """Give the pair back to the pool; this annotator will not see it again."""
    with transaction.atomic():
        assignment = _owned_assignment_for_update(assignment_id=assignment_id, user=user)
        if assignment.state == Assignment.State.SKIPPED:
            return
        if assignment.state != Assignment.State.LIVE:
            raise Conflict(f"This assignment is already {assignment.state}.")
        sql.assignment_set_state(assignment_id=assignment.pk, state=Assignment.State.SKIPPED)
        if not assignment.repeat:  # a repeat check holds no slot
            sql.pair_release_slot(pair_id=assignment.pair_id)


# --------------------------------------------------------------------------- #
# Votes
# --------------------------------------------------------------------------- #
def _choice_in_pair_terms(*, screen_choice: str, left: str) -> str:
    """A screen choice in pair terms, given the side shown on the left."""
    if screen_choice == "left":
        return left
    if screen_choice == "right":
        return Side.B if left == Side.A else Side.A
    return screen_choice


def _validate_vote_form(*, choice: str, strength: int | None, rationale: str) -> None:
    """What a vote must be in any project."""
    if choice not in SCREEN_CHOICES:
        raise InvalidInput(f"choice must be one of {', '.join(SCREEN_CHOICES)}.")
    if strength is not None and (choice not in ("left", "right") or not 1 <= strength <= 3):
        raise InvalidInput("strength is 1, 2 or 3, and only for a left or right choice.")
    if rationale and (len(rationale) > 5000 or "\x00" in rationale):
        raise InvalidInput("rationale must be under 5,000 characters of text.")


def _validate_vote_for_project(*, project: Project, choice: str, strength: int | None, rationale: str) -> None:
    """What this project accepts (sql.vote_record_on_live_lease checks the same in SQL)."""
    if choice not in project.choices:
        raise InvalidInput(f"This project does not offer '{choice}'.")
    if strength is not None and not project.ask_strength:
        raise InvalidInput("This project does not ask for a strength.")
    if rationale and not project.ask_rationale:
        raise InvalidInput("This project does not ask for a rationale.")


def vote_submit(
    *,
    assignment_id: int,
    user: AbstractBaseUser,
    choice: str,
    strength: int | None = None,
    rationale: str = "",
    latency_ms: int | None = None,
    now: datetime | None = None,
) -> tuple[Vote, bool]:
    """Record a vote on a leased pair. Returns (vote, created).

    `choice` is in screen terms (left/right/tie/both_bad) and is stored in
    pair terms. Submitting the same choice again returns the stored vote
    (created False): a double click or a retry gives one vote. A different
    choice, someone else's lease, or a skipped lease is a Conflict and
    writes nothing.
    """
    now = now or timezone.now()
    rationale = (rationale or "").strip()
    _validate_vote_form(choice=choice, strength=strength, rationale=rationale)
    # The common case first: a vote on one's own live lease, in one statement
    # on PostgreSQL. None when it does not apply, having written nothing.
    vote = sql.vote_record_on_live_lease(
        assignment_id=assignment_id,
        annotator_id=annotator_for_user(user=user).pk,
        choice=choice,
        choice_if_left={side: _choice_in_pair_terms(screen_choice=choice, left=side) for side in Side.values},
        strength=strength,
        rationale=rationale,
        latency_ms=latency_ms,
        now=now,
        durable=settings.LABELING_DURABLE_VOTES,
    )
    if vote is not None:
        if vote.pair_gold:
            annotator_gold_check(project_id=vote.project_id, annotator_id=vote.annotator_id, now=now)
        return vote, True
    with transaction.atomic():
        assignment = _owned_assignment_for_update(assignment_id=assignment_id, user=user)
        project = assignment.project
        _validate_vote_for_project(project=project, choice=choice, strength=strength, rationale=rationale)
        pair_choice = _choice_in_pair_terms(screen_choice=choice, left=assignment.left)
        if assignment.repeat:
            return _repeat_answer(assignment=assignment, choice=pair_choice, latency_ms=latency_ms, now=now)

        if assignment.state == Assignment.State.VOTED:
            existing = Vote.objects.get(assignment=assignment)
            if existing.choice != pair_choice:
                raise Conflict("You already voted on this pair.")
            return existing, False
        if assignment.state == Assignment.State.SKIPPED:
            raise Conflict("You skipped this pair.")
        if assignment.state == Assignment.State.EXPIRED:
            # The lease ran out and its slot went back to the pool: retake it
            # if the pair still has room, so late work is not thrown away.
            if not sql.pair_retake_slot(pair_id=assignment.pair_id, overlap_target=project.overlap_target):
                raise Conflict("Your lease on this pair expired and it has enough votes now.")

        vote = sql.vote_record(
            assignment=assignment,
            choice=pair_choice,
            strength=strength,
            rationale=rationale,
            latency_ms=_latency_ms(assignment=assignment, reported=latency_ms, now=now),
            now=now,
            durable=settings.LABELING_DURABLE_VOTES,
        )
        assignment.state = Assignment.State.VOTED
        # The dashboard aggregates count it when it is folded in, after this
        # request (dashboard.aggregates): here it would queue behind every
        # other vote in the project, on the project-wide aggregate rows.
    if vote.pair_gold:
        annotator_gold_check(project_id=vote.project_id, annotator_id=vote.annotator_id, now=now)
    return vote, True


def _latency_ms(*, assignment: Assignment, reported: int | None, now: datetime) -> int:
    """The client's latency when it is plausible (0 to the time since serving), else the server's measure."""
    server_ms = max(0, int((now - assignment.served_at).total_seconds() * 1000))
    return reported if reported is not None and 0 <= reported <= server_ms else server_ms


def _repeat_answer(*, assignment: Assignment, choice: str, latency_ms: int | None, now: datetime) -> tuple[Vote, bool]:
    """Store the answer to a repeat check (locked lease, choice in pair terms) as a RepeatCheck, not a vote.

    Answered as a vote is: the annotator's vote on the pair, with the choice
    of this answer, so a client cannot tell a repeat from any other pair.
    Answering again with the same choice is a retry; a late answer on an
    expired repeat still counts (it takes no slot). Conflict when skipped,
    or when the first vote is gone (undone) meanwhile.
    """
    if assignment.state == Assignment.State.SKIPPED:
        raise Conflict("You skipped this pair.")
    original = Vote.objects.filter(pair_id=assignment.pair_id, annotator_id=assignment.annotator_id).first()
    if assignment.state == Assignment.State.VOTED:
        check = RepeatCheck.objects.filter(assignment=assignment).first()
        if check is None or check.choice != choice:
            raise Conflict("You already voted on this pair.")
        return _repeat_as_vote(check, original), False
    if original is None:
        sql.assignment_set_state(assignment_id=assignment.pk, state=Assignment.State.SKIPPED)
        raise Conflict("This pair is no longer yours to vote on.")
    check = RepeatCheck.objects.create(
        project_id=assignment.project_id,
        annotator_id=assignment.annotator_id,
        pair_id=assignment.pair_id,
        assignment=assignment,
        vote=original,
        original_choice=original.choice,
        original_left=original.shown_left or "",
        shown_left=assignment.left,
        choice=choice,
        consistent=choice == original.choice,
        latency_ms=_latency_ms(assignment=assignment, reported=latency_ms, now=now),
        created_at=now,
    )
    sql.assignment_set_state(assignment_id=assignment.pk, state=Assignment.State.VOTED)
    assignment.state = Assignment.State.VOTED
    return _repeat_as_vote(check, original), True


def _repeat_as_vote(check: RepeatCheck, original: Vote | None) -> Vote:
    """A repeat check's answer in the shape of a vote (unsaved): the id of the annotator's vote on the pair."""
    vote = Vote(
        id=original.pk if original else None,
        project_id=check.project_id,
        pair_id=check.pair_id,
        annotator_id=check.annotator_id,
        choice=check.choice,
        shown_left=check.shown_left,
        latency_ms=check.latency_ms,
        created_at=check.created_at,
    )
    vote._state.adding = False
    return vote


# --------------------------------------------------------------------------- #
# Gold pairs: the automatic pause, and reinstating
# --------------------------------------------------------------------------- #
def annotator_gold_check(*, project_id: int, annotator_id: int, now: datetime | None = None) -> bool:
    """Pause the annotator if their gold votes say so; whether they are paused now.

    Run after each vote on a gold pair. Counts their gold votes since they
    were last reinstated (all of them if never): with at least
    `project.gold_min_votes` of them, and the upper end of the 95% Wilson
    interval of their accuracy below `project.gold_pause_below`, they are
    paused (AnnotatorStanding.paused_at) and their live lease given back.
    A tie or both-bad vote on a gold pair counts as wrong.
    """
    now = now or timezone.now()
    project = Project.objects.get(pk=project_id)
    standing = AnnotatorStanding.objects.filter(project_id=project_id, annotator_id=annotator_id).first()
    if standing is not None and standing.paused_at is not None:
        return True
    correct, n = selectors.annotator_gold_counts(
        project=project, annotator_id=annotator_id, since=standing.reinstated_at if standing else None
    )
    if n < project.gold_min_votes:
        return False
    _lo, hi = wilson_interval(correct, n)
    if hi >= project.gold_pause_below:
        return False
    reason = (
        f"Automatic: {correct} of {n} check pairs right ({correct / n:.0%}); the 95% interval's upper end "
        f"{hi:.2f} is below the project's {project.gold_pause_below:.2f}."
    )
    with transaction.atomic():
        AnnotatorStanding.objects.get_or_create(project_id=project_id, annotator_id=annotator_id)
        paused = AnnotatorStanding.objects.filter(
            project_id=project_id, annotator_id=annotator_id, paused_at__isnull=True
        ).update(paused_at=now, pause_reason=reason)
        if paused:
            _pairs_count(_leases_give_back(project_id=project_id, annotator_id=annotator_id))
    return True


def annotator_reinstate(
    *, project: Project, annotator: Annotator, by: AbstractBaseUser, reason: str, now: datetime | None = None
) -> AnnotatorStanding:
    """Lift an annotator's pause, with a reason that is recorded (who, when, why).

    Their votes count in training again, and they are served pairs again.
    Only gold votes cast after `now` count towards a next pause: the ones
    that paused them do not pause them again. InvalidInput without a
    reason; Conflict when they are not paused.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason for reinstating: it is recorded.")
    if len(reason) > 2000:
        raise InvalidInput("Keep the reason under 2,000 characters.")
    with transaction.atomic():
        standing = AnnotatorStanding.objects.select_for_update().filter(project=project, annotator=annotator).first()
        if standing is None or standing.paused_at is None:
            raise Conflict(f"{annotator} is not paused on this project.")
        standing.paused_at = None
        standing.reinstated_at = now
        standing.reinstated_by = by
        standing.reinstate_reason = reason
        standing.save(update_fields=["paused_at", "reinstated_at", "reinstated_by", "reinstate_reason"])
    return standing


# --------------------------------------------------------------------------- #
# Acquisition: the order the queue serves train-split pairs in
# --------------------------------------------------------------------------- #
RERANK_CHUNK = 1000


def pairs_rerank(*, project: Project, order: Sequence[int]) -> int:
    """Serve the project's open train-split pairs in `order` (pair ids, most wanted first).

    Selection walks (slots_taken, rank), so only the ranks change: the
    pairs of `order` get ranks spread evenly over the rank space in that
    order, while held-out pairs keep their random content-hash ranks. The
    two interleave, so held-out pairs keep the same share of every stretch
    of the queue, in random order, whatever the strategy: held-out accuracy
    stays an unbiased estimate. Pairs not in `order` keep their ranks.

    Written in chunks of RERANK_CHUNK rows, each its own short transaction,
    so leases never wait long on a re-rank; K and the leases are untouched
    (a rank is only an order).
    """
    ids = Pair.objects.filter(project=project, split=Split.TRAIN, pk__in=list(order)).values_list("pk", flat=True)
    train = set(ids)
    wanted = [pk for pk in dict.fromkeys(order) if pk in train]
    n = len(wanted)
    ranks = [(pk, int((i + 0.5) * RANK_SPACE / n)) for i, pk in enumerate(wanted)]
    for start in range(0, n, RERANK_CHUNK):
        with transaction.atomic():
            sql.pair_ranks_set(ranks=ranks[start : start + RERANK_CHUNK])
    return n


def pairs_rerank_reset(*, project: Project) -> int:
    """Give every train-split pair of the project its own random rank back (the `random` strategy)."""
    rows = Pair.objects.filter(project=project, split=Split.TRAIN).values_list("pk", "content_hash", "rank")
    ranks = [(pk, _rank(h)) for pk, h, rank in rows.iterator(chunk_size=5000) if rank != _rank(h)]
    for start in range(0, len(ranks), RERANK_CHUNK):
        with transaction.atomic():
            sql.pair_ranks_set(ranks=ranks[start : start + RERANK_CHUNK])
    return len(ranks)


# --------------------------------------------------------------------------- #
# Undo and change
# --------------------------------------------------------------------------- #
# An annotator may take back or change their own vote for LABELING_UNDO_SECONDS
# after casting it. Each undo or change is written down (VoteChange: who, when,
# the old choice, the new one) in the transaction that makes it, and every
# counter moves with it:
# - the pair's vote_count and votes_a/b/tie count the votes as they are now,
#   so training snapshots read the final choice;
# - slots_taken counts votes plus live leases: an undone vote becomes a live
#   lease on the same slot, so K holds as it did;
# - the dashboard aggregates count a vote once it is folded in; a change of
#   a folded vote sets VoteChange.uncount_pending and the fold takes the old
#   vote back out (dashboard.aggregates), the new choice being folded as a
#   new vote (Vote.in_aggregates False).
@dataclass(frozen=True)
class UndoneVote:
    """An undone vote's lease, live again with its pair, and what the vote was (screen terms)."""

    assignment: Assignment
    choice: str
    strength: int | None
    rationale: str


def _choice_on_screen(*, pair_choice: str, left: str) -> str:
    """A stored choice in the screen terms of the lease that showed `left` on the left."""
    if pair_choice in (Side.A, Side.B):
        return "left" if pair_choice == left else "right"
    return pair_choice


def _window_check(vote: Vote, now: datetime) -> None:
    window = settings.LABELING_UNDO_SECONDS
    if window == 0:
        raise Conflict("Votes cannot be undone or changed here (LABELING_UNDO_SECONDS is 0).")
    if now - vote.created_at > timedelta(seconds=window):
        minutes = max(1, round(window / 60))
        raise Conflict(
            f"A vote can be undone or changed for {minutes} minute{'s' if minutes != 1 else ''} after it is cast;"
            " this one is older."
        )


def _counts_moved(*, removed: str | None = None, added: str | None = None) -> Counter:
    """A pair's counter deltas for one vote taken away and/or one added (pair terms)."""
    columns = {Choice.A: "votes_a", Choice.B: "votes_b"}
    delta: Counter = Counter()
    if removed:
        delta[columns.get(removed, "votes_tie")] -= 1
        delta["vote_count"] -= 1
    if added:
        delta[columns.get(added, "votes_tie")] += 1
        delta["vote_count"] += 1
    return delta


def _pairs_count(deltas: dict[int, Counter]) -> None:
    """Add each pair's counter deltas, in pair id order: two undos locking the same two
    pairs in opposite orders would deadlock."""
    for pair_id in sorted(deltas):
        changes = {name: F(name) + n for name, n in deltas[pair_id].items() if n}
        if changes:
            Pair.objects.filter(pk=pair_id).update(**changes)


def _leases_give_back(*, project_id: int, annotator_id: int) -> dict[int, Counter]:
    """Delete the annotator's live lease in the project; the slot to give back, as pair deltas.

    Deleted rather than expired, so the pair may be served to them again:
    an expired lease would keep it from them for good (one assignment per
    pair and annotator).
    """
    held = list(
        Assignment.objects.select_for_update()
        .filter(project_id=project_id, annotator_id=annotator_id, state=Assignment.State.LIVE)
        .values_list("pk", "pair_id", "repeat")
    )
    if held:
        Assignment.objects.filter(pk__in=[pk for pk, _, _ in held]).delete()
    return {pair_id: Counter(slots_taken=-1) for _, pair_id, repeat in held if not repeat}


def vote_undo(*, assignment_id: int, user: AbstractBaseUser, now: datetime | None = None) -> UndoneVote:
    """Take back the vote on this lease, within the undo window, and lease the pair to the same annotator again.

    The vote is deleted and recorded as undone (VoteChange). Its lease is live
    again from `now`, on the slot the vote held; the live lease the annotator
    held instead (usually the next pair) is given back, as they may hold one
    per project. Conflict, writing nothing, when the lease is not theirs,
    holds no vote, or the window has passed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _owned_assignment_for_update(assignment_id=assignment_id, user=user)
        selectors.project_get_for_labeling(user=user, project_id=assignment.project_id)  # still a member
        if assignment.state != Assignment.State.VOTED:
            raise Conflict("There is no vote on this pair to undo.")
        vote = Vote.objects.select_for_update().filter(assignment_id=assignment.pk).first()
        if vote is None:
            raise Conflict("There is no vote on this pair to undo.")
        _window_check(vote, now)
        deltas = _leases_give_back(project_id=assignment.project_id, annotator_id=assignment.annotator_id)
        deltas[vote.pair_id] = _counts_moved(removed=vote.choice)
        VoteChange.objects.create(
            project_id=vote.project_id,
            pair_id=vote.pair_id,
            annotator_id=vote.annotator_id,
            vote_id=vote.pk,
            assignment_id=assignment.pk,
            changed_by=user,
            action=VoteChange.Action.UNDO,
            old_choice=vote.choice,
            old_strength=vote.strength,
            shown_left=vote.shown_left,
            latency_ms=vote.latency_ms,
            created_at=now,
            uncount_pending=vote.in_aggregates,
        )
        vote.delete()
        _pairs_count(deltas)
        Assignment.objects.filter(pk=assignment.pk).update(
            state=Assignment.State.LIVE,
            served_at=now,
            expires_at=now + timedelta(seconds=assignment.project.lease_seconds),
        )
        lease = sql.assignment_live(project_id=assignment.project_id, annotator_id=assignment.annotator_id)
    return UndoneVote(
        assignment=lease,
        choice=_choice_on_screen(pair_choice=vote.choice, left=assignment.left),
        strength=vote.strength,
        rationale=vote.rationale,
    )


def vote_undo_last(*, project: Project, user: AbstractBaseUser, now: datetime | None = None) -> UndoneVote:
    """Undo the annotator's most recent vote in the project (the labeling page's `u`)."""
    annotator = annotator_for_user(user=user)
    last = (
        Vote.objects.filter(annotator=annotator, project=project, assignment__isnull=False)
        .order_by("-id")
        .values_list("assignment_id", flat=True)
        .first()
    )
    if last is None:
        raise Conflict("You have no vote to undo in this project.")
    return vote_undo(assignment_id=last, user=user, now=now)


def vote_change(
    *,
    vote_id: int,
    user: AbstractBaseUser,
    choice: str,
    strength: int | None = None,
    rationale: str | None = None,
    now: datetime | None = None,
) -> Vote:
    """Change one's own vote within the undo window. `choice` is in the screen terms of
    the lease it was cast on; `rationale` None keeps the one stored.

    Records the change (VoteChange) and moves the pair's counters. A vote
    already counted in the dashboard aggregates is marked to be taken out and
    folded in again with its new choice. NotFound for a vote that is not
    theirs; Conflict after the window; InvalidInput for input the project
    does not accept. Changing nothing writes nothing.
    """
    now = now or timezone.now()
    annotator = annotator_for_user(user=user)
    if rationale is not None:
        rationale = rationale.strip()
    _validate_vote_form(choice=choice, strength=strength, rationale=rationale or "")
    with transaction.atomic():
        vote = Vote.objects.select_for_update().filter(pk=vote_id, annotator=annotator).first()
        if vote is None or vote.shown_left is None:  # an imported vote was never cast on a screen
            raise NotFound("No such vote of yours.")
        project = Project.objects.get(pk=vote.project_id)
        _validate_vote_for_project(project=project, choice=choice, strength=strength, rationale=rationale or "")
        _window_check(vote, now)
        pair_choice = _choice_in_pair_terms(screen_choice=choice, left=vote.shown_left)
        new_rationale = vote.rationale if rationale is None else rationale
        if (pair_choice, strength, new_rationale) == (vote.choice, vote.strength, vote.rationale):
            return vote
        moved = pair_choice != vote.choice
        VoteChange.objects.create(
            project_id=vote.project_id,
            pair_id=vote.pair_id,
            annotator_id=vote.annotator_id,
            vote_id=vote.pk,
            assignment_id=vote.assignment_id,
            changed_by=user,
            action=VoteChange.Action.CHANGE,
            old_choice=vote.choice,
            new_choice=pair_choice,
            old_strength=vote.strength,
            new_strength=strength,
            shown_left=vote.shown_left,
            latency_ms=vote.latency_ms,
            created_at=now,
            # Only the choice is in the aggregates: a new strength or rationale leaves them as they are.
            uncount_pending=moved and vote.in_aggregates,
        )
        if moved:
            _pairs_count({vote.pair_id: _counts_moved(removed=vote.choice, added=pair_choice)})
        vote.choice, vote.strength, vote.rationale = pair_choice, strength, new_rationale
        vote.in_aggregates = vote.in_aggregates and not moved
        vote.save(update_fields=["choice", "strength", "rationale", "in_aggregates"])
    if moved and Pair.objects.filter(pk=vote.pair_id).exclude(gold="").exists():
        annotator_gold_check(project_id=vote.project_id, annotator_id=vote.annotator_id, now=now)
    return vote
