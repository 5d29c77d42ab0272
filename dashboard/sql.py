"""Hand-written SQL for the dashboard aggregates, written when votes are folded in.

Built with labeling.sql's helpers: plain SQL on SQLite and PostgreSQL
alike, rows back as model instances. The fold (dashboard.aggregates) is
the only writer.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.models import AnnotatorStats, ProjectStats
from labeling.sql import Loader, execute, fetchall, fetchone, for_update

_PROJECT_STATS = Loader(ProjectStats)
_ANNOTATOR_STATS = Loader(AnnotatorStats)


def project_stats_lock(*, project_id: int) -> ProjectStats | None:
    row = fetchone(
        f"SELECT {_PROJECT_STATS.columns('s')} FROM labeling_projectstats s WHERE s.project_id = %s" + for_update("s"),
        [project_id],
    )
    return None if row is None else _PROJECT_STATS.instance(row)


def project_stats_save(*, stats: ProjectStats, names: Sequence[str]) -> None:
    sets = ", ".join(f"{name} = %s" for name in names)
    execute(f"UPDATE labeling_projectstats SET {sets} WHERE id = %s", [*(getattr(stats, n) for n in names), stats.pk])


def tally_buckets_add(*, project_id: int, deltas: Sequence[tuple[str, int, int, int, int]]) -> None:
    """Add (split, n_a, n_b, n_tie, delta) to the project's bucket counts, creating buckets as needed.

    One statement for all of them (a vote moves its pair between two buckets);
    the keys are distinct, as one upsert may not touch a row twice.
    """
    for start in range(0, len(deltas), 500):
        chunk = deltas[start : start + 500]
        execute(
            "INSERT INTO labeling_tallybucket (project_id, split, n_a, n_b, n_tie, pairs) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            + " ON CONFLICT (project_id, split, n_a, n_b, n_tie)"
            " DO UPDATE SET pairs = labeling_tallybucket.pairs + excluded.pairs",
            [value for delta in chunk for value in (project_id, *delta)],
        )


def annotator_stats_lock(*, project_id: int, annotator_ids: Sequence[int]) -> list[AnnotatorStats]:
    """The rows of these annotators in the project that exist, locked."""
    rows: list[AnnotatorStats] = []
    for start in range(0, len(annotator_ids), 2000):
        chunk = annotator_ids[start : start + 2000]
        rows += [
            _ANNOTATOR_STATS.instance(row)
            for row in fetchall(
                f"SELECT {_ANNOTATOR_STATS.columns('s')} FROM labeling_annotatorstats s WHERE s.project_id = %s"
                f" AND s.annotator_id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY s.id" + for_update("s"),
                [project_id, *chunk],
            )
        ]
    return rows


def counted_votes(*, pair_ids: Sequence[int]) -> list[tuple]:
    """What the aggregates count on these pairs: (pair_id, annotator_id, choice, shown_left,
    latency_ms, change_id) of every vote folded in, and of every old vote an undo or change
    has yet to take out (change_id names its VoteChange; None for a vote).

    One statement per chunk of pairs, so each pair is read at one instant: an undo
    or change moves a vote from the first set to the second in one transaction,
    and no pair is ever seen with it in both or in neither.
    """
    rows: list[tuple] = []
    for start in range(0, len(pair_ids), 500):
        chunk = list(pair_ids[start : start + 500])
        marks = ", ".join(["%s"] * len(chunk))
        rows += fetchall(
            "SELECT pair_id, annotator_id, choice, shown_left, latency_ms, CAST(NULL AS BIGINT) FROM labeling_vote"
            f" WHERE pair_id IN ({marks}) AND in_aggregates = %s"
            " UNION ALL SELECT pair_id, annotator_id, old_choice, shown_left, latency_ms, id FROM labeling_votechange"
            f" WHERE pair_id IN ({marks}) AND uncount_pending = %s",
            [*chunk, True, *chunk, True],
        )
    return rows
