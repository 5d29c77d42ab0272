"""Preferences out, in the shapes TRL and Hugging Face `datasets` read.

Formats (`export_rows`):

- ``trl``: ``{prompt, chosen, rejected, margin?}``, one row per pair whose
  votes have a winner by the label rule (`preferences.labels`). ``margin`` is
  the median strength of the winning side's votes; it is a column of every
  row when any vote in the project has a strength (0 where none was given),
  and absent otherwise, because TRL needs it on all rows or none.
- ``pairwise``: the import shape, ``{id, prompt, response_a, response_b,
  votes: [{annotator, choice, strength, rationale}], metadata, split}``,
  every pair (unlabeled ones with ``votes: []``), so export and re-import
  round-trip. Imported annotators keep their names; people who voted in the
  app appear under their pseudonym.
- ``votes``: one row per vote with a pseudonymous annotator id (a keyed
  HMAC of the annotator's id with SECRET_KEY: stable across exports,
  meaningless without the key), the side shown on the left, the choice,
  strength, rationale, latency and time.

Everything streams: pairs are read with ``iterator(chunk_size)`` and the
votes of each chunk in one query; files are written row by row by
`preferences.writers` (parquet in row groups). Memory does not grow with
the project.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from labeling.models import Pair, Project, Vote
from labeling.pseudonyms import annotator_pseudonym
from lib.errors import InvalidInput
from preferences import writers
from preferences.records import ImportedVote, PreferenceRecord, record_to_training_pair

EXPORT_FORMATS = ("trl", "pairwise", "votes")
SPLITS = ("all", "train", "test")
DEFAULT_CHUNK = 2000

ProgressCallback = Callable[[int, int], None]


class ExportFailed(InvalidInput):
    pass


@dataclass
class ExportSummary:
    rows: int
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "path": self.path}


# --------------------------------------------------------------------------- #
# Rows
# --------------------------------------------------------------------------- #
def export_validate_options(*, fmt: str, split: str, min_votes: int) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ExportFailed(f"unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if split not in SPLITS:
        raise ExportFailed(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if min_votes < 0:
        raise ExportFailed("min-votes cannot be negative")


def export_has_margin(*, project: Project) -> bool:
    """Whether a trl export carries a margin column (see the module docstring)."""
    return Vote.objects.filter(project=project, strength__isnull=False).exists()


def export_count(*, project: Project, fmt: str, split: str = "all", min_votes: int = 0) -> int:
    """Rows of pairs or votes in scope (an upper bound for trl): the progress bar's total."""
    if fmt == "votes":
        return _votes(project, split, min_votes).count()
    return _pairs(project, fmt, split, min_votes).count()


def export_rows(
    *,
    project: Project,
    fmt: str,
    split: str = "all",
    min_votes: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    with_margin: bool | None = None,
) -> Iterator[dict[str, Any]]:
    """The export's rows, oldest pair (or vote) first, read in chunks."""
    export_validate_options(fmt=fmt, split=split, min_votes=min_votes)
    if fmt == "votes":
        yield from _vote_rows(project, split, min_votes, chunk_size)
        return
    if fmt == "trl" and with_margin is None:
        with_margin = export_has_margin(project=project)
    pairs = (
        _pairs(project, fmt, split, min_votes)
        .values("id", "prompt", "response_a", "response_b", "external_id", "metadata", "split")
        .iterator(chunk_size=chunk_size)
    )
    while chunk := list(islice(pairs, chunk_size)):
        votes = _votes_by_pair([p["id"] for p in chunk])
        for pair in chunk:
            row = (
                _trl_row(pair, votes.get(pair["id"], []), with_margin)
                if fmt == "trl"
                else _pairwise_row(pair, votes.get(pair["id"], []))
            )
            if row is not None:
                yield row


def _pairs(project: Project, fmt: str, split: str, min_votes: int):
    pairs = Pair.objects.filter(project=project)
    if fmt == "trl":  # gold pairs check annotators; they are no training data
        pairs = pairs.filter(gold="")
    if split != "all":
        pairs = pairs.filter(split=split)
    if min_votes or fmt == "trl":  # a pair with no votes has no majority
        pairs = pairs.filter(vote_count__gte=max(min_votes, 1 if fmt == "trl" else 0))
    return pairs.order_by("id")


def _votes(project: Project, split: str, min_votes: int):
    votes = Vote.objects.filter(project=project)
    if split != "all":
        votes = votes.filter(pair__split=split)
    if min_votes:
        votes = votes.filter(pair__vote_count__gte=min_votes)
    return votes.order_by("id")


def _votes_by_pair(pair_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    rows = (
        Vote.objects.filter(pair_id__in=pair_ids)
        .order_by("pair_id", "id")
        .values("pair_id", "annotator_id", "annotator__external_id", "choice", "strength", "rationale")
    )
    for vote in rows:
        out.setdefault(vote["pair_id"], []).append(vote)
    return out


def _annotator_name(vote: dict) -> str:
    # Imported identities keep the name they came with (so a re-import
    # matches them); app users are never named in a file.
    return vote["annotator__external_id"] or annotator_pseudonym(annotator_id=vote["annotator_id"])


def _pairwise_row(pair: dict, votes: list[dict]) -> dict[str, Any]:
    return {
        "id": pair["external_id"] or None,
        "prompt": pair["prompt"],
        "response_a": pair["response_a"],
        "response_b": pair["response_b"],
        "votes": [
            {
                "annotator": _annotator_name(v),
                "choice": v["choice"],
                "strength": v["strength"],
                "rationale": v["rationale"],
            }
            for v in votes
        ],
        "metadata": pair["metadata"] or {},
        "split": pair["split"],
    }


def _trl_row(pair: dict, votes: list[dict], with_margin: bool) -> dict[str, Any] | None:
    record = PreferenceRecord(
        prompt=pair["prompt"],
        response_a=pair["response_a"],
        response_b=pair["response_b"],
        votes=tuple(ImportedVote(str(v["annotator_id"]), v["choice"], v["strength"]) for v in votes),
    )
    training = record_to_training_pair(record)  # the majority label, as the trainer reads it
    if training is None:
        return None
    row: dict[str, Any] = {"prompt": training.prompt, "chosen": training.chosen, "rejected": training.rejected}
    if with_margin:
        row["margin"] = float(training.strength or 0)
    return row


def _vote_rows(project: Project, split: str, min_votes: int, chunk_size: int) -> Iterator[dict[str, Any]]:
    rows = (
        _votes(project, split, min_votes)
        .values(
            "pair_id",
            "pair__external_id",
            "annotator_id",
            "choice",
            "shown_left",
            "strength",
            "rationale",
            "latency_ms",
            "created_at",
            "pair__split",
        )
        .iterator(chunk_size=chunk_size)
    )
    for v in rows:
        yield {
            "pair_id": v["pair_id"],
            "pair_external_id": v["pair__external_id"] or None,
            "annotator": annotator_pseudonym(annotator_id=v["annotator_id"]),
            "choice": v["choice"],
            "shown_left": v["shown_left"],
            "strength": v["strength"],
            "rationale": v["rationale"],
            "latency_ms": v["latency_ms"],
            "created_at": v["created_at"].isoformat(),
            "split": v["pair__split"],
        }


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #
def export_to_path(
    *,
    project: Project,
    fmt: str,
    path: str | Path,
    split: str = "all",
    min_votes: int = 0,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ExportSummary:
    """Write an export file (or save_to_disk folder), atomically: a temp name, then a rename."""
    export_validate_options(fmt=fmt, split=split, min_votes=min_votes)
    path = Path(path)
    try:
        writers.file_kind(path)
    except ValueError as exc:
        raise ExportFailed(str(exc)) from None
    if path.exists() and not overwrite:
        raise ExportFailed(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise ExportFailed(f"{path.parent} is not a folder")
    with_margin = fmt == "trl" and export_has_margin(project=project)
    total = export_count(project=project, fmt=fmt, split=split, min_votes=min_votes)
    counter = _Counter(total, on_progress)
    rows = counter.wrap(
        export_rows(project=project, fmt=fmt, split=split, min_votes=min_votes, with_margin=with_margin)
    )
    writers.rows_write(rows, path, fmt=fmt, with_margin=with_margin)
    return ExportSummary(rows=counter.n, path=str(path))


class _Counter:
    """Counts rows as they stream past and reports progress every thousand."""

    def __init__(self, total: int, on_progress: ProgressCallback | None):
        self.total = total
        self.on_progress = on_progress
        self.n = 0

    def wrap(self, rows: Iterator[dict]) -> Iterator[dict]:
        for row in rows:
            self.n += 1
            if self.on_progress and self.n % 1000 == 0:
                self.on_progress(self.n, self.total)
            yield row
        if self.on_progress:
            self.on_progress(self.n, self.n)
