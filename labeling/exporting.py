"""Preferences out, in the shapes TRL and Hugging Face `datasets` read.

Formats (`export_rows`):

- ``trl``: ``{prompt, chosen, rejected, margin?, p_chosen?}``, one row per
  pair whose votes have a winner by the label rule (`preferences.labels`).
  ``margin`` is the median strength of the winning side's votes; it is a
  column of every row when any vote in the project has a strength (0 where
  none was given), and absent otherwise, because TRL needs it on all rows or
  none. Gold pairs are never in it: they never train.
- ``pairwise``: the import shape, ``{id, prompt, response_a, response_b,
  votes: [{annotator, choice, strength, rationale}], metadata, split,
  gold?, p_chosen?}``, every pair (unlabeled ones with ``votes: []``, gold
  pairs too), so export and re-import round-trip. ``gold`` is a column when
  the project has gold pairs: "a" or "b" on a gold pair, null elsewhere.
  Imported annotators keep their names; people who voted in the app appear
  under their pseudonym.

With a label model (``label_model``, one of
`preferences.label_models.LABEL_MODELS`) the model is fitted once on every
vote of the project (gold pairs seed it, whatever the split or min-votes
filter), and:

- trl rows are labelled by the model: chosen is the side it favours, and
  ``p_chosen`` = P(chosen is better), in [0.5, 1]; a pair is in it when the
  model gives it a P (crowd models: at least one a/b vote; majority: a
  winner, so ``p_chosen`` is 1.0). ``margin`` is the median strength of the
  votes for the chosen side.
- pairwise rows gain ``p_chosen`` = P(response_a is better), in [0, 1]:
  pairwise rows have no chosen side, so the column holds the probability
  that response_a is the one to choose. It is null where the model gives no
  P (no a/b vote, or a gold pair).
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

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from labeling.models import Pair, Project, Vote
from labeling.pseudonyms import annotator_pseudonym
from labeling.selectors import label_model_inputs
from lib.errors import InvalidInput
from preferences import writers
from preferences.label_models import LABEL_MODELS, label_model_fit
from preferences.records import ImportedVote, PreferenceRecord, record_to_training_pair, soft_training_pair

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
def export_validate_options(*, fmt: str, split: str, min_votes: int, label_model: str | None = None) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ExportFailed(f"unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if split not in SPLITS:
        raise ExportFailed(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if min_votes < 0:
        raise ExportFailed("min-votes cannot be negative")
    if label_model is not None:
        if label_model not in LABEL_MODELS:
            raise ExportFailed(f"unknown label model {label_model!r}; expected one of {', '.join(LABEL_MODELS)}")
        if fmt == "votes":
            raise ExportFailed("a label model labels pairs: use it with the trl or pairwise format")


def export_columns(*, project: Project, fmt: str, label_model: str | None = None) -> dict[str, bool]:
    """Which optional columns an export has: {with_margin, with_gold, with_p_chosen} (module docstring)."""
    return {
        "with_margin": fmt == "trl" and export_has_margin(project=project),
        "with_gold": fmt == "pairwise" and Pair.objects.filter(project=project).exclude(gold="").exists(),
        "with_p_chosen": fmt != "votes" and label_model is not None,
    }


def export_stream(
    *, project: Project, fmt: str, split: str = "all", min_votes: int = 0, label_model: str | None = None
) -> tuple[dict[str, bool], Iterator[dict[str, Any]]]:
    """The export's optional columns (`export_columns`) and its rows, with those columns: what every writer needs."""
    columns = export_columns(project=project, fmt=fmt, label_model=label_model)
    rows = export_rows(
        project=project,
        fmt=fmt,
        split=split,
        min_votes=min_votes,
        with_margin=columns["with_margin"],
        with_gold=columns["with_gold"],
        label_model=label_model,
    )
    return columns, rows


def export_label_fit(*, project: Project, label_model: str):
    """The label model fitted as a training run fits it (rewardmodel.snapshot): gold answers seeding it,
    paused annotators' votes left out, so the export's labels are the ones a run would train on."""
    votes, gold = label_model_inputs(project=project, leave_out_paused=True)
    return label_model_fit(votes, model=label_model, gold=gold)


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
    with_gold: bool | None = None,
    label_model: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The export's rows, oldest pair (or vote) first, read in chunks.

    `with_margin` and `with_gold` default to `export_columns`; with a
    `label_model` rows carry ``p_chosen`` (module docstring).
    """
    export_validate_options(fmt=fmt, split=split, min_votes=min_votes, label_model=label_model)
    if fmt == "votes":
        yield from _vote_rows(project, split, min_votes, chunk_size)
        return
    if with_margin is None or with_gold is None:
        columns = export_columns(project=project, fmt=fmt, label_model=label_model)
        with_margin = columns["with_margin"] if with_margin is None else with_margin
        with_gold = columns["with_gold"] if with_gold is None else with_gold
    p_a = export_label_fit(project=project, label_model=label_model).p_a if label_model else None
    pairs = (
        _pairs(project, fmt, split, min_votes)
        .values("id", "prompt", "response_a", "response_b", "external_id", "metadata", "split", "gold")
        .iterator(chunk_size=chunk_size)
    )
    while chunk := list(islice(pairs, chunk_size)):
        votes = _votes_by_pair([p["id"] for p in chunk])
        for pair in chunk:
            pair_votes = votes.get(pair["id"], [])
            if fmt == "pairwise":
                row = _pairwise_row(pair, pair_votes)
                if with_gold:
                    row["gold"] = pair["gold"] or None
                if p_a is not None:
                    row["p_chosen"] = p_a.get(pair["id"])
            elif p_a is not None:
                row = _trl_row_soft(pair, pair_votes, p_a.get(pair["id"]), with_margin)
            else:
                row = _trl_row(pair, pair_votes, with_margin)
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


def _trl_row_soft(pair: dict, votes: list[dict], p_a: float | None, with_margin: bool) -> dict[str, Any] | None:
    """A trl row labelled by a label model's P(response_a is better); None when it gives none."""
    if p_a is None:
        return None
    training = soft_training_pair(pair["prompt"], pair["response_a"], pair["response_b"], p_a)
    row: dict[str, Any] = {"prompt": training.prompt, "chosen": training.chosen, "rejected": training.rejected}
    if with_margin:
        side = "a" if p_a >= 0.5 else "b"
        strengths = [v["strength"] for v in votes if v["choice"] == side and v["strength"]]
        row["margin"] = float(statistics.median_low(strengths)) if strengths else 0.0
    row["p_chosen"] = training.p_chosen
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
    label_model: str | None = None,
) -> ExportSummary:
    """Write an export file (or save_to_disk folder), atomically: a temp name, then a rename."""
    export_validate_options(fmt=fmt, split=split, min_votes=min_votes, label_model=label_model)
    path = Path(path)
    try:
        writers.file_kind(path)
    except ValueError as exc:
        raise ExportFailed(str(exc)) from None
    if path.exists() and not overwrite:
        raise ExportFailed(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise ExportFailed(f"{path.parent} is not a folder")
    columns, rows = export_stream(project=project, fmt=fmt, split=split, min_votes=min_votes, label_model=label_model)
    total = export_count(project=project, fmt=fmt, split=split, min_votes=min_votes)
    counter = _Counter(total, on_progress)
    writers.rows_write(counter.wrap(rows), path, fmt=fmt, **columns)
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
