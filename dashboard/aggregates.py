"""Running aggregates of the votes, for the reviewer dashboard.

The aggregates count exactly the votes with `in_aggregates` set. Every vote
is stored with it False and folded in by `aggregates_fold`, in batches: an
import's votes in the transaction that writes them (a receiver of
labeling.signals.votes_imported), a live vote from the labeling loop later,
by a beat task every few seconds and by every dashboard read before it
reads, so a reviewer sees every vote stored before the page was asked for. Keeping the vote's own transaction off the
project-wide rows (a handful of tally buckets and one totals row that every
vote changes) is what keeps the vote fast under load: when a vote held those
rows until its commit was on disk, every other vote in the project queued
behind that commit (docs/labeling.md).

What is kept (dashboard.models):
- `TallyBucket`: how many pairs have each (n_a, n_b, n_tie), per split. A
  new vote moves its pair from one bucket to the next.
- `AnnotatorStats`: per annotator votes, ties, position and length choices,
  a latency histogram, leave-one-out agreement with the other voters and
  agreement with the active model, and outlier flags.
- `ProjectStats`: model-vs-majority counts for the active version, and the
  pooled leave-one-out totals the outlier flags compare against.

Every change is computed as a transition of one pair from its old votes to
old - removed + new votes (`_PairChange`), so a live vote, an imported
batch, an undone or changed vote and a full rebuild all go through the same
arithmetic. Pairs are labelled by the one label rule (`preferences.labels`).

Undone and changed votes. An annotator may take a vote back or change it
(labeling.services.vote_undo / vote_change). A vote not folded in yet just
changes. A folded one leaves a `VoteChange` row carrying what was counted,
with `uncount_pending` set, and the vote itself (if changed) goes back to
waiting with its new choice. So at every commit the aggregates count exactly
the folded votes plus the pending VoteChange rows (`sql.counted_votes`); the
fold takes the pending ones out and folds the waiting ones in. The fold locks
the waiting votes it reads, so a vote cannot change between being counted
and being marked as counted.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models.functions import Length

from dashboard import sql
from dashboard.models import AnnotatorStats, ProjectStats, TallyBucket
from labeling.models import Pair, Project, Split, Vote, VoteChange
from labeling.sql import cursor
from preferences.agreement import loo_agrees, pick_of_margin, wilson_excludes, wilson_interval
from preferences.labels import Tally, category_of, plurality
from rewardmodel.models import ModelVersion, PairPrediction

# Latency histogram: bucket 0 is < 100 ms, buckets 1..120 are log-spaced up
# to one hour (each about 9% wide, so the median is good to about +-5%),
# bucket 121 is an hour or more.
LATENCY_MIN_MS = 100
LATENCY_MAX_MS = 3_600_000
LATENCY_BUCKETS = 120
_LOG_STEP = math.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LATENCY_BUCKETS

# Outlier flags. Each needs this many observations before it can fire.
FLAG_MIN_N = 10
# Median time per vote under this is too fast to have read two responses.
FAST_MEDIAN_MS = 2_000
FLAG_POSITION = "position_bias"
FLAG_LOW_AGREEMENT = "low_agreement"
FLAG_TOO_FAST = "too_fast"


# --------------------------------------------------------------------------- #
# Pure helpers
# --------------------------------------------------------------------------- #
def latency_bucket(ms: int) -> int:
    if ms < LATENCY_MIN_MS:
        return 0
    return min(LATENCY_BUCKETS + 1, 1 + int(math.log(ms / LATENCY_MIN_MS) / _LOG_STEP))


def latency_median(hist: dict) -> int | None:
    """Median of a latency histogram, interpolated geometrically inside its bucket."""
    counts = {int(k): v for k, v in hist.items() if v}
    total = sum(counts.values())
    if not total:
        return None
    half, seen = total / 2, 0
    for b in sorted(counts):
        if seen + counts[b] >= half:
            frac = (half - seen) / counts[b]
            if b == 0:
                return int(LATENCY_MIN_MS * frac)
            if b > LATENCY_BUCKETS:
                return LATENCY_MAX_MS
            lo = LATENCY_MIN_MS * math.exp((b - 1) * _LOG_STEP)
            return int(round(lo * math.exp(frac * _LOG_STEP)))
        seen += counts[b]
    return LATENCY_MAX_MS  # pragma: no cover - unreachable


def annotator_flags(stats: AnnotatorStats, *, others_loo_n: int, others_loo_agree: int) -> list[str]:
    """Why this annotator stands out, from their row and everyone else's pooled agreement.

    - position_bias: the 95% Wilson interval of P(left chosen) leaves out 0.5.
    - low_agreement: the 95% Wilson interval of their leave-one-out agreement
      lies wholly below everyone else's pooled leave-one-out agreement.
    - too_fast: median time per vote under FAST_MEDIAN_MS.
    """
    flags = []
    if stats.sided >= FLAG_MIN_N and wilson_excludes(stats.left_chosen, stats.sided, 0.5):
        flags.append(FLAG_POSITION)
    if stats.loo_n >= FLAG_MIN_N and others_loo_n >= FLAG_MIN_N:
        _, hi = wilson_interval(stats.loo_agree, stats.loo_n)
        if hi is not None and hi < others_loo_agree / others_loo_n:
            flags.append(FLAG_LOW_AGREEMENT)
    if stats.latency_n >= FLAG_MIN_N and stats.median_latency_ms is not None:
        if stats.median_latency_ms < FAST_MEDIAN_MS:
            flags.append(FLAG_TOO_FAST)
    return flags


class _NewVote(NamedTuple):
    # A named tuple, not a dataclass: imports build one per vote.
    annotator_id: int
    choice: str
    shown_left: str | None
    latency_ms: int | None


@dataclass
class _PairChange:
    """One pair going from `old + removed` counted votes to `old + new`."""

    pair_id: int
    split: str
    len_a: int
    len_b: int
    gold: bool  # a gold pair: its votes count for their annotators' own figures, never in agreement or labels
    old: list[tuple[int, str]]  # (annotator_id, choice) counted before this change, and kept
    new: list[_NewVote]
    removed: list[_NewVote] = field(default_factory=list)  # counted before this change, taken out by it


_COUNTER_FIELDS = (
    "votes",
    "decisive",
    "ties",
    "sided",
    "left_chosen",
    "longer_decidable",
    "longer_chosen",
    "loo_n",
    "loo_agree",
    "model_n",
    "model_agree",
)
_PROJECT_FIELDS = ("model_n", "model_agree", "model_n2", "model_agree2")


@dataclass
class _Deltas:
    buckets: Counter = field(default_factory=Counter)  # (split, n_a, n_b, n_tie) -> pairs
    project: Counter = field(default_factory=Counter)  # ProjectStats model_* fields
    annotators: dict = field(default_factory=lambda: defaultdict(Counter))  # id -> field -> delta
    latencies: dict = field(default_factory=lambda: defaultdict(Counter))  # id -> bucket -> votes


def _loo(tally: tuple[int, int, int], choice: str) -> bool | None:
    return loo_agrees(n_a=tally[0], n_b=tally[1], n_tie=tally[2], choice=choice)


def _count_vote(
    deltas: _Deltas,
    vote: _NewVote,
    tally: tuple[int, int, int] | None,
    longer: str | None,
    model_side: str | None,
    sign: int,
) -> None:
    """Add (sign 1) or take out (sign -1) everything one vote counts for its annotator,
    on a pair whose tally, this vote included, is `tally` (None on a gold pair: no agreement)."""
    d = deltas.annotators[vote.annotator_id]
    decisive = category_of(vote.choice) != "tie"
    d["votes"] += sign
    d["decisive"] += sign * decisive
    d["ties"] += sign * (not decisive)
    if decisive and vote.shown_left:
        d["sided"] += sign
        d["left_chosen"] += sign * (vote.choice == vote.shown_left)
    if decisive and longer:
        d["longer_decidable"] += sign
        d["longer_chosen"] += sign * (vote.choice == longer)
    if vote.latency_ms is not None:
        deltas.latencies[vote.annotator_id][latency_bucket(vote.latency_ms)] += sign
    agrees = None if tally is None else _loo(tally, vote.choice)
    d["loo_n"] += sign * (agrees is not None)
    d["loo_agree"] += sign * (agrees is True)
    if model_side and decisive:
        d["model_n"] += sign
        d["model_agree"] += sign * (vote.choice == model_side)


def _accumulate(deltas: _Deltas, change: _PairChange, model_side: str | None) -> None:
    """Add one pair's transition to `deltas` (no database access).

    A gold pair's votes count for their annotators' own figures (votes,
    time, position, length) and nowhere else: not in the tally histogram
    (agreement, kappa, alpha, the ceiling), not in leave-one-out agreement,
    not against the model."""
    longer = "a" if change.len_a > change.len_b else "b" if change.len_b > change.len_a else None
    if change.gold:
        for vote in change.removed:
            _count_vote(deltas, vote, None, longer, None, -1)
        for vote in change.new:
            _count_vote(deltas, vote, None, longer, None, 1)
        return
    kept = [c for _, c in change.old]
    t0 = Tally.of(kept + [v.choice for v in change.removed]).as_tuple()
    t1 = Tally.of(kept + [v.choice for v in change.new]).as_tuple()
    if sum(t0):
        deltas.buckets[(change.split, *t0)] -= 1
    if sum(t1):  # a pair whose last vote was undone leaves the histogram
        deltas.buckets[(change.split, *t1)] += 1

    # Voters who stay: their others' majority changed.
    for annotator_id, choice in change.old:
        before, after = _loo(t0, choice), _loo(t1, choice)
        if before != after:
            d = deltas.annotators[annotator_id]
            d["loo_n"] += (after is not None) - (before is not None)
            d["loo_agree"] += (after is True) - (before is True)

    for vote in change.removed:
        _count_vote(deltas, vote, t0, longer, model_side, -1)
    for vote in change.new:
        _count_vote(deltas, vote, t1, longer, model_side, 1)

    if model_side:
        m0, m1 = plurality(*t0), plurality(*t1)
        decisive0, decisive1 = m0 in ("a", "b"), m1 in ("a", "b")
        deltas.project["model_n"] += decisive1 - decisive0
        deltas.project["model_agree"] += (m1 == model_side) - (m0 == model_side)
        two0, two1 = sum(t0) >= 2, sum(t1) >= 2
        deltas.project["model_n2"] += (decisive1 and two1) - (decisive0 and two0)
        deltas.project["model_agree2"] += (m1 == model_side and two1) - (m0 == model_side and two0)


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #
def project_stats_locked(*, project_id: int) -> ProjectStats:
    """The project's totals row, locked: it serialises the aggregate writers of a project
    (fold, import, rebuild, activation), so the bucket and annotator rows below are never
    locked in two orders. The labeling loop never takes it."""
    found = sql.project_stats_lock(project_id=project_id)
    if found is not None:
        return found
    ProjectStats.objects.bulk_create([ProjectStats(project_id=project_id)], ignore_conflicts=True)
    return sql.project_stats_lock(project_id=project_id)


def _model_sides(stats: ProjectStats, changes: Sequence[_PairChange]) -> dict[int, str]:
    """The active version's pick (a or b) on each changed held-out pair it scored."""
    test_ids = [c.pair_id for c in changes if c.split == Split.TEST and not c.gold]
    if stats.active_version_id is None or not test_ids:
        return {}
    sides = {}
    for start in range(0, len(test_ids), 500):
        rows = PairPrediction.objects.filter(
            version_id=stats.active_version_id, pair_id__in=test_ids[start : start + 500]
        ).values_list("pair_id", "margin")
        for pair_id, margin in rows:
            if pick_of_margin(margin):
                sides[pair_id] = pick_of_margin(margin)
    return sides


def _write_buckets(project_id: int, buckets: Counter) -> None:
    deltas = [(*key, delta) for key, delta in sorted(buckets.items()) if delta]
    if deltas:
        sql.tally_buckets_add(project_id=project_id, deltas=deltas)


def _write_annotators(project_id: int, stats: ProjectStats, deltas: _Deltas) -> set[int]:
    """Add the deltas to the annotators' rows (created on their first vote); the annotator ids written."""
    ids = sorted(set(deltas.annotators) | set(deltas.latencies))
    if not ids:
        return set()
    rows = sql.annotator_stats_lock(project_id=project_id, annotator_ids=ids)
    missing = sorted(set(ids) - {row.annotator_id for row in rows})
    if missing:  # an annotator's first vote in the project
        AnnotatorStats.objects.bulk_create(
            [AnnotatorStats(project_id=project_id, annotator_id=i) for i in missing],
            ignore_conflicts=True,
            batch_size=2000,
        )
        rows += sql.annotator_stats_lock(project_id=project_id, annotator_ids=missing)
    for row in rows:
        d = deltas.annotators.get(row.annotator_id, {})
        for name in _COUNTER_FIELDS:
            if d.get(name):
                setattr(row, name, getattr(row, name) + d[name])
        stats.loo_n += d.get("loo_n", 0)
        stats.loo_agree += d.get("loo_agree", 0)
        added = deltas.latencies.get(row.annotator_id)
        if added:
            hist = Counter({int(k): v for k, v in row.latency_hist.items()})
            hist.update(added)  # adds, negative counts too (an undone vote's time)
            row.latency_hist = {str(k): v for k, v in sorted(hist.items()) if v}
            row.latency_n += sum(added.values())
            row.median_latency_ms = latency_median(row.latency_hist)
    # An annotator whose every vote here was undone has no row, as in a rebuild.
    gone = [row for row in rows if row.votes == 0]
    rows = [row for row in rows if row.votes]
    for row in rows:  # after all deltas, so each compares against the final pool
        row.flags = annotator_flags(
            row, others_loo_n=stats.loo_n - row.loo_n, others_loo_agree=stats.loo_agree - row.loo_agree
        )
        row.flag_count = len(row.flags)
    annotator_stats_update_rows(
        rows, [*_COUNTER_FIELDS, "latency_n", "latency_hist", "median_latency_ms", "flags", "flag_count"]
    )
    if gone:
        AnnotatorStats.objects.filter(pk__in=[row.pk for row in gone]).delete()
    return set(ids)


def _rejudge_agreement_flags(stats: ProjectStats, *, written: set[int]) -> None:
    """Judge everyone else's low-agreement flag against the pool as it is now.

    That flag compares an annotator with the others' pooled leave-one-out
    agreement, which moves with every change, so an annotator who stopped
    voting would otherwise keep the verdict of the pool at their last vote.
    Only rows with FLAG_MIN_N or more decisions can carry it.
    """
    rows = AnnotatorStats.objects.filter(project_id=stats.project_id, loo_n__gte=FLAG_MIN_N).only(
        "id", "annotator_id", "sided", "left_chosen", "loo_n", "loo_agree", "latency_n", "median_latency_ms", "flags"
    )
    changed = []
    for row in rows.iterator(chunk_size=2000):
        if row.annotator_id in written:  # judged against this pool already
            continue
        flags = annotator_flags(
            row, others_loo_n=stats.loo_n - row.loo_n, others_loo_agree=stats.loo_agree - row.loo_agree
        )
        if flags != row.flags:
            row.flags, row.flag_count = flags, len(flags)
            changed.append(row)
    annotator_stats_update_rows(changed, ["flags", "flag_count"])


def annotator_stats_update_rows(rows: Sequence[AnnotatorStats], names: Sequence[str]) -> None:
    """One parameterised UPDATE per row through executemany.

    Django's bulk_update builds a CASE expression per field and row, which
    costs milliseconds per row in Python; this costs microseconds.
    """
    if not rows:
        return
    fields = [AnnotatorStats._meta.get_field(n) for n in names]
    qn = connection.ops.quote_name
    statement = (
        f"UPDATE {qn(AnnotatorStats._meta.db_table)} SET "
        + ", ".join(f"{qn(f.column)} = %s" for f in fields)
        + f" WHERE {qn('id')} = %s"
    )
    params = [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] + [row.pk] for row in rows]
    with cursor() as cur:
        if len(params) == 1:  # a live vote's usual case: executemany would add pipeline round trips
            cur.execute(statement, params[0])
        else:
            cur.executemany(statement, params)


def _apply(stats: ProjectStats, changes: Sequence[_PairChange]) -> None:
    """Write the changes' deltas; `stats` is the project's row, already locked."""
    project_id = stats.project_id
    totals = [*_PROJECT_FIELDS, "loo_n", "loo_agree"]
    before = [getattr(stats, name) for name in totals]
    sides = _model_sides(stats, changes)
    deltas = _Deltas()
    for change in changes:
        _accumulate(deltas, change, sides.get(change.pair_id))
    _write_buckets(project_id, deltas.buckets)
    for name in _PROJECT_FIELDS:
        setattr(stats, name, getattr(stats, name) + deltas.project[name])
    pool = (stats.loo_n, stats.loo_agree)
    written = _write_annotators(project_id, stats, deltas)
    if (stats.loo_n, stats.loo_agree) != pool:
        _rejudge_agreement_flags(stats, written=written)
    if [getattr(stats, name) for name in totals] != before:  # a pair's first vote changes none
        sql.project_stats_save(stats=stats, names=totals)


# --------------------------------------------------------------------------- #
# Folding votes in
# --------------------------------------------------------------------------- #
FOLD_BATCH = 2000


def _pairs_info(pair_ids: Sequence[int]) -> dict[int, tuple[str, int, int, bool]]:
    """(split, len(response_a), len(response_b), is gold) of each pair."""
    info: dict[int, tuple[str, int, int, bool]] = {}
    for start in range(0, len(pair_ids), 500):
        rows = (
            Pair.objects.filter(pk__in=pair_ids[start : start + 500])
            .annotate(len_a=Length("response_a"), len_b=Length("response_b"))
            .values_list("pk", "split", "len_a", "len_b", "gold")
        )
        info.update({pk: (split, la, lb, gold != "") for pk, split, la, lb, gold in rows})
    return info


def aggregates_fold(*, project_id: int, batch: int = FOLD_BATCH) -> int:
    """Fold the project's waiting votes into the aggregates, and take out the old votes
    that undos and changes left pending; how many votes and changes were folded.

    One transaction per batch, under the project's aggregate lock. The
    batch is read first, its votes locked, then what the aggregates count on
    its pairs (`sql.counted_votes`): a vote committed in between is in
    neither, and is left for the next batch, so none is counted twice or
    missed. The lock keeps an undo or change of a waiting vote from landing
    between reading it and marking it counted.
    """
    folded = 0
    while True:
        with transaction.atomic():
            stats = project_stats_locked(project_id=project_id)
            rows = list(
                Vote.objects.filter(project_id=project_id, in_aggregates=False)
                .order_by("pk")
                .select_for_update()
                .values_list("pk", "pair_id", "annotator_id", "choice", "shown_left", "latency_ms")[:batch]
            )
            # Read after the votes: a change committed in between has its vote
            # waiting (not in `rows`) and its old vote pending here, and is whole.
            taken_out = list(
                VoteChange.objects.filter(project_id=project_id, uncount_pending=True)
                .order_by("pk")
                .values_list("pk", "pair_id", "annotator_id", "old_choice", "shown_left", "latency_ms")[:batch]
            )
            if not rows and not taken_out:
                return folded
            new: dict[int, list[_NewVote]] = defaultdict(list)
            for _, pair_id, *fields in rows:
                new[pair_id].append(_NewVote(*fields))
            removed: dict[int, list[_NewVote]] = defaultdict(list)
            for _, pair_id, *fields in taken_out:
                removed[pair_id].append(_NewVote(*fields))
            removed_ids = {row[0] for row in taken_out}
            pair_ids = sorted(set(new) | set(removed))
            old: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for pair_id, annotator_id, choice, _, _, change_id in sql.counted_votes(pair_ids=pair_ids):
                if change_id not in removed_ids:
                    old[pair_id].append((annotator_id, choice))
            info = _pairs_info(pair_ids)
            _apply(
                stats,
                [
                    _PairChange(pk, *info[pk], old.get(pk, []), new.get(pk, []), removed.get(pk, []))
                    for pk in pair_ids
                    if pk in info
                ],
            )
            ids = [row[0] for row in rows]
            for start in range(0, len(ids), 500):
                Vote.objects.filter(pk__in=ids[start : start + 500]).update(in_aggregates=True)
            if removed_ids:
                VoteChange.objects.filter(pk__in=sorted(removed_ids)).update(uncount_pending=False)
        folded += len(rows) + len(taken_out)
        if len(rows) < batch and len(taken_out) < batch:
            return folded


def on_votes_imported(*, project_id: int, **signal_kwargs) -> None:
    """Fold an import's votes in the transaction that wrote them (labeling.signals.votes_imported)."""
    aggregates_fold(project_id=project_id)


def aggregates_fold_all() -> dict[int, int]:
    """Fold every project's waiting votes and changes (the beat task); how many per project."""
    project_ids = set(Vote.objects.filter(in_aggregates=False).values_list("project_id", flat=True).distinct())
    project_ids |= set(VoteChange.objects.filter(uncount_pending=True).values_list("project_id", flat=True).distinct())
    return {pid: aggregates_fold(project_id=pid) for pid in sorted(project_ids)}


# --------------------------------------------------------------------------- #
# Rebuild from the vote table
# --------------------------------------------------------------------------- #
def aggregates_rebuild(*, project: Project, chunk_pairs: int = 5000) -> None:
    """Recompute every aggregate of `project` from its votes, in one transaction.

    For a project whose votes predate the dashboard, or after a manual
    fix of the vote table. Each pair is folded in as all-new votes on an
    empty pair: the same arithmetic as `aggregates_fold` and imports, which
    is what the tests compare against. Old votes that undos and changes
    have yet to take out are counted as the fold would find them
    (`sql.counted_votes`), and left for the fold to take out.
    """
    with transaction.atomic():
        stats = project_stats_locked(project_id=project.pk)
        # Everything stored so far is counted; a vote committed after this
        # statement stays out of the aggregates until the next fold.
        Vote.objects.filter(project=project, in_aggregates=False).update(in_aggregates=True)
        TallyBucket.objects.filter(project=project).delete()
        AnnotatorStats.objects.filter(project=project).delete()
        for name in (*_PROJECT_FIELDS, "loo_n", "loo_agree"):
            setattr(stats, name, 0)
        deltas = _Deltas()
        pair_ids = sorted(
            set(Pair.objects.filter(project=project, vote_count__gt=0).values_list("pk", flat=True))
            | set(VoteChange.objects.filter(project=project, uncount_pending=True).values_list("pair_id", flat=True))
        )
        for start in range(0, len(pair_ids), chunk_pairs):
            chunk = pair_ids[start : start + chunk_pairs]
            info = _pairs_info(chunk)
            votes: dict[int, list[_NewVote]] = defaultdict(list)
            for pair_id, *fields, _ in sql.counted_votes(pair_ids=chunk):
                votes[pair_id].append(_NewVote(*fields))
            changes = [_PairChange(pk, *info[pk], [], v) for pk, v in votes.items()]
            sides = _model_sides(stats, changes)
            for change in changes:
                _accumulate(deltas, change, sides.get(change.pair_id))
        TallyBucket.objects.bulk_create(
            [
                TallyBucket(project=project, split=s, n_a=a, n_b=b, n_tie=t, pairs=n)
                for (s, a, b, t), n in sorted(deltas.buckets.items())
                if n
            ],
            batch_size=500,
        )
        for name in _PROJECT_FIELDS:
            setattr(stats, name, deltas.project[name])
        _write_annotators(project.pk, stats, deltas)
        stats.save()


def _aggregate_rows(project: Project) -> dict[str, list]:
    """Every aggregate row of the project, as comparable tuples."""
    annotator_fields = ["annotator_id", *_COUNTER_FIELDS, "latency_n", "latency_hist", "median_latency_ms", "flags"]
    return {
        "tally_buckets": sorted(
            TallyBucket.objects.filter(project=project, pairs__gt=0).values_list(
                "split", "n_a", "n_b", "n_tie", "pairs"
            )
        ),
        "annotator_stats": sorted(
            tuple(sorted(v.items()) if isinstance(v, dict) else v for v in row)
            for row in AnnotatorStats.objects.filter(project=project).values_list(*annotator_fields)
        ),
        "project_stats": list(
            ProjectStats.objects.filter(project=project).values_list(*_PROJECT_FIELDS, "loo_n", "loo_agree")
        ),
    }


def aggregates_check(*, project: Project) -> dict[str, dict]:
    """Compare the project's aggregates with a rebuild from its votes; the tables that differ.

    Folds the waiting votes first, then rebuilds inside a transaction that
    is rolled back, so nothing changes. An empty answer means the running
    aggregates are exactly what a rebuild would write.
    """
    aggregates_fold(project_id=project.pk)
    with transaction.atomic():
        stored = _aggregate_rows(project)
        aggregates_rebuild(project=project)
        rebuilt = _aggregate_rows(project)
        transaction.set_rollback(True)
    return {
        table: {"stored": stored[table], "rebuilt": rebuilt[table]}
        for table in stored
        if stored[table] != rebuilt[table]
    }


# --------------------------------------------------------------------------- #
# A new live version
# --------------------------------------------------------------------------- #
def on_version_activated(*, version: ModelVersion, **signal_kwargs) -> None:
    """Recompute the model-vs-human aggregates for `version`'s project, which just went live.

    A receiver of rewardmodel.signals.version_activated, sent inside the
    transaction that activates the version, so per-annotator agreement with
    the model always refers to the live version.

    Reads the version's predictions on held-out pairs once, and the votes on
    those pairs that are in the aggregates, old votes an undo or change has
    yet to take out included (live votes still waiting to be folded are
    counted against this version when they are): the project's
    agreement with the majority label, and each annotator's agreement with
    the model's pick over their decisive votes on those pairs.
    """
    with transaction.atomic():
        stats = project_stats_locked(project_id=version.project_id)
        stats.active_version_id = version.pk
        sides: dict[int, str] = {}
        for pair_id, margin in (
            PairPrediction.objects.filter(version=version, pair__split=Split.TEST, pair__gold="")
            .values_list("pair_id", "margin")
            .iterator(chunk_size=5000)
        ):
            side = pick_of_margin(margin)
            if side is not None:
                sides[pair_id] = side

        choices: dict[int, list[str]] = defaultdict(list)
        per_annotator: dict[int, Counter] = {}
        pair_ids = list(sides)
        for start in range(0, len(pair_ids), 2000):
            for pair_id, annotator_id, choice, *_ in sql.counted_votes(pair_ids=pair_ids[start : start + 2000]):
                choices[pair_id].append(choice)
                if choice in ("a", "b"):
                    c = per_annotator.setdefault(annotator_id, Counter())
                    c["n"] += 1
                    c["agree"] += choice == sides[pair_id]

        totals = Counter()
        for pair_id, pair_choices in choices.items():
            label = Tally.of(pair_choices).label
            if label not in ("a", "b"):
                continue
            two = len(pair_choices) >= 2
            totals["model_n"] += 1
            totals["model_n2"] += two
            totals["model_agree"] += label == sides[pair_id]
            totals["model_agree2"] += two and label == sides[pair_id]
        for name in ("model_n", "model_agree", "model_n2", "model_agree2"):
            setattr(stats, name, totals[name])
        stats.save()

        AnnotatorStats.objects.filter(project_id=version.project_id).exclude(model_n=0, model_agree=0).update(
            model_n=0, model_agree=0
        )
        ids = sorted(per_annotator)
        for start in range(0, len(ids), 2000):
            rows = list(
                AnnotatorStats.objects.filter(project_id=version.project_id, annotator_id__in=ids[start : start + 2000])
            )
            for row in rows:
                row.model_n = per_annotator[row.annotator_id]["n"]
                row.model_agree = per_annotator[row.annotator_id]["agree"]
            annotator_stats_update_rows(rows, ["model_n", "model_agree"])


def on_version_predictions_added(*, version: ModelVersion, **signal_kwargs) -> None:
    """Recount the model-vs-human figures when the live version is scored on more held-out pairs.

    A receiver of rewardmodel.signals.version_predictions_added (the
    promotion gate caches scores of older versions on newer pairs). Only the
    live version's scores count here, so a refused candidate's or an old
    version's leave the aggregates alone.
    """
    with transaction.atomic():
        stats = project_stats_locked(project_id=version.project_id)
        if stats.active_version_id == version.pk:
            on_version_activated(version=version)
