"""Import orchestration: rows from a `RowSource` become pairs and votes, all or nothing.

Two streaming passes, so memory stays flat however large the file:

1. `pairs_import_validate` reads every row and parses it with the shared
   row parser (`preferences.formats.parse_row`), writing nothing.
   The first invalid row stops the import with a message naming its line
   and field, unless ``skip_invalid`` is set, in which case it is reported
   and passed over.
2. `pairs_import_write` reads the source again and writes batches of
   `batch_size` records through `labeling.services.pairs_import_batch`, one
   transaction each. That service is idempotent by content hash, so a crash
   part-way through is recovered by running the import again: the batches
   already stored come back as duplicates.

`pairs_import` runs both for an existing project.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labeling import services
from labeling.models import Project
from lib.errors import InvalidInput
from preferences.formats import DEFAULT_MAX_CHARS, FORMATS, RowError, detect_format, parse_row
from preferences.readers import ReadError, RowSource
from preferences.records import PreferenceRecord

# Rows per transaction: each commit costs a WAL sync on SQLite, so fewer,
# larger batches import faster; 5,000 rows hold a few MB.
DEFAULT_BATCH_SIZE = 5000
SKIPPED_EXAMPLES_KEPT = 100  # messages kept for the job page; the CLI prints every one
_PROGRESS_EVERY = 1000

# Called with (phase, rows done, rows in total or None while unknown).
ProgressCallback = Callable[[str, int, int | None], None]
SkipCallback = Callable[[str], None]

# What SQLite and PostgreSQL text (and jsonb) columns cannot hold.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Field names as the row shape calls them, for messages about parsed records.
_TEXT_LABELS = {
    "trl": ("prompt", "chosen", "rejected"),
    "pairwise": ("prompt", "response_a", "response_b"),
    "pandalm": ("instruction", "response1", "response2"),
}


class ImportFailed(InvalidInput):
    """The import wrote nothing (or, in pass 2, stopped); the message says where and why.

    `invalid_rows` is set when the check pass failed on invalid rows: how
    many there are in the whole file, so the caller can offer to import the
    others with ``skip_invalid``. None for a file that cannot be read on.
    """

    def __init__(self, message: str, *, invalid_rows: int | None = None, rows: int | None = None):
        super().__init__(message)
        self.invalid_rows = invalid_rows
        self.rows = rows


@dataclass
class Validation:
    """What pass 1 found: the format to write with and how many rows are good."""

    fmt: str
    skip_invalid: bool
    rows: int = 0
    valid: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    created: int = 0
    duplicates: int = 0
    votes: int = 0
    skipped: int = 0
    rows: int = 0
    fmt: str = ""
    skipped_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The CLI's last line and the job page's counts."""
        return {"created": self.created, "duplicates": self.duplicates, "votes": self.votes, "skipped": self.skipped}


def pairs_import(
    *,
    project: Project,
    source: RowSource,
    fmt: str = "auto",
    skip_invalid: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
    on_skip: SkipCallback | None = None,
    gold: bool = False,
) -> ImportSummary:
    """Validate the whole source, then write it to `project`. Raises ImportFailed.
    With `gold`, every row of a TRL source is a gold pair (see `pairs_import_write`)."""
    validation = pairs_import_validate(
        source=source,
        fmt=fmt,
        skip_invalid=skip_invalid,
        max_chars=max_chars,
        on_progress=on_progress,
        on_skip=on_skip,
    )
    return pairs_import_write(
        project=project,
        source=source,
        validation=validation,
        max_chars=max_chars,
        batch_size=batch_size,
        on_progress=on_progress,
        gold=gold,
    )


GOLD_NEEDS_TRL = (
    "Marking every row gold is for TRL files (chosen is the answer); a pairwise file marks its gold pairs "
    "with a per-row `gold` field (a or b) instead."
)


def pairs_import_validate(
    *,
    source: RowSource,
    fmt: str = "auto",
    skip_invalid: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    on_progress: ProgressCallback | None = None,
    on_skip: SkipCallback | None = None,
) -> Validation:
    """Pass 1: read and parse every row, write nothing.

    With ``fmt="auto"`` the format is detected from the first row that is an
    object and then held for the whole file, so a file that mixes shapes
    fails on the first row of the other shape. Without ``skip_invalid`` the
    first invalid row fails the import, after the rest of the file has been
    read to count the invalid rows (`ImportFailed.invalid_rows`).
    """
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    result = Validation(fmt=fmt, skip_invalid=skip_invalid)
    first_error: str | None = None
    try:
        for position, row in source:
            result.rows += 1
            if on_progress and result.rows % _PROGRESS_EVERY == 0:
                on_progress("checking", result.rows, None)
            if result.fmt == "auto" and isinstance(row, dict):
                with contextlib.suppress(RowError):  # reported just below as this row's error
                    result.fmt = detect_format(row)
            try:
                record_parse(row, fmt=result.fmt, max_chars=max_chars)
            except RowError as exc:
                message = _where(source, position, exc)
                result.skipped += 1
                if not skip_invalid:
                    first_error = first_error or message
                    continue  # counting the others, to offer importing the valid rows
                if len(result.skipped_examples) < SKIPPED_EXAMPLES_KEPT:
                    result.skipped_examples.append(message)
                if on_skip:
                    on_skip(message)
                continue
            result.valid += 1
    except ReadError as exc:
        raise ImportFailed(f"{source.description}: {exc.message}") from None
    if first_error is not None:
        invalid = result.skipped
        raise ImportFailed(
            f"{first_error} ({invalid:,} of {result.rows:,} rows are invalid; nothing was written. "
            f"Skipping the invalid rows imports the other {result.valid:,}.)",
            invalid_rows=invalid,
            rows=result.rows,
        )
    if result.rows == 0:
        raise ImportFailed(f"{source.description}: found no rows to import")
    if on_progress:
        on_progress("checking", result.rows, result.rows)
    return result


def pairs_import_write(
    *,
    project: Project,
    source: RowSource,
    validation: Validation,
    max_chars: int = DEFAULT_MAX_CHARS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
    gold: bool = False,
) -> ImportSummary:
    """Pass 2: write the rows pass 1 accepted, `batch_size` per transaction.

    TRL rows put the chosen response first; their sides are shuffled (by
    content hash, so re-imports agree) so that `response_a` is not always
    the winner. With `gold` (TRL only, else ImportFailed writing nothing)
    every row is a gold pair whose answer is its chosen response.
    """
    if gold and validation.fmt != "trl":
        raise ImportFailed(GOLD_NEEDS_TRL)
    summary = ImportSummary(
        skipped=validation.skipped,
        rows=validation.rows,
        fmt=validation.fmt,
        skipped_examples=validation.skipped_examples,
    )
    shuffle_sides = validation.fmt == "trl"
    batch: list[PreferenceRecord] = []
    written = 0

    def flush() -> None:
        nonlocal written
        counts = services.pairs_import_batch(
            project=project, records=batch, shuffle_sides=shuffle_sides, gold_first=gold
        )
        summary.created += counts.created
        summary.duplicates += counts.duplicates
        summary.votes += counts.votes
        written += len(batch)
        batch.clear()
        if on_progress:
            on_progress("writing", written, validation.valid)

    try:
        for position, row in source:
            try:
                record = record_parse(row, fmt=validation.fmt, max_chars=max_chars)
            except RowError as exc:
                if validation.skip_invalid:
                    continue
                # Valid in pass 1, invalid now: the file changed in between.
                raise ImportFailed(
                    f"{_where(source, position, exc)} (the source changed after it was checked; "
                    "rows before this one were written, run the import again)"
                ) from None
            batch.append(record)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    except ReadError as exc:
        raise ImportFailed(
            f"{source.description}: {exc.message} (rows before this point were written; "
            "run the import again once the source is readable)"
        ) from None
    return summary


def record_parse(row: Any, *, fmt: str, max_chars: int) -> PreferenceRecord:
    """One row as a record the database can store, or RowError naming the field."""
    if isinstance(row, RowError):  # the reader could not decode this row
        raise row
    record = parse_row(row, fmt, max_chars=max_chars)
    _check_storable(record, fmt)
    return record


def _check_storable(record: PreferenceRecord, fmt: str) -> None:
    """What parse_row lets through but a database column would refuse mid-write."""
    labels = _TEXT_LABELS.get(fmt, _TEXT_LABELS["pairwise"])
    for label, text in zip(labels, (record.prompt, record.response_a, record.response_b)):
        if _UNSTORABLE.search(text):
            raise RowError(label, "holds an unpaired surrogate (\\ud800-\\udfff), which is not text")
    if record.external_id is not None and _UNSTORABLE.search(record.external_id):
        raise RowError("id", "holds a NUL or an unpaired surrogate")
    for i, vote in enumerate(record.votes):
        if _UNSTORABLE.search(vote.annotator):
            raise RowError(f"votes[{i}].annotator", "holds a NUL or an unpaired surrogate")
        if vote.rationale and _UNSTORABLE.search(vote.rationale):
            raise RowError(f"votes[{i}].rationale", "holds an unpaired surrogate")
    if record.metadata:
        problem = _json_problem(record.metadata, "metadata")
        if problem:
            where, message = problem
            if fmt == "trl" and where == "metadata.margin":
                where = "margin"  # parse_row keeps a TRL row's margin in the metadata
            raise RowError(where, message)


def _json_problem(value: Any, path: str, depth: int = 0) -> tuple[str, str] | None:
    """(where, why) `value` cannot be stored as JSON in SQLite and PostgreSQL, or None."""
    if depth > 64:
        return path, "nests too deeply"
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"is {value}, which JSON cannot hold")
    if isinstance(value, str):
        return (path, "holds a NUL or an unpaired surrogate") if _UNSTORABLE.search(value) else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or _UNSTORABLE.search(key):
                return path, "has a key that is not plain text"
            problem = _json_problem(item, f"{path}.{key}", depth + 1)
            if problem:
                return problem
        return None
    return path, f"holds a {type(value).__name__}, which is not a JSON value"


def _where(source: RowSource, position: int, exc: RowError) -> str:
    return f"{source.unit} {position}: {exc.field} {exc.message}"
