"""Running aggregates kept up to date on every vote, for the reviewer dashboard.

`labeling.services` calls these inside the transaction that writes the
votes, so the aggregates can never disagree with the vote table.
"""
from __future__ import annotations

from typing import Sequence

from labeling.models import Pair, Project, Vote


def record_vote(*, vote: Vote, pair: Pair) -> None:
    """Fold one new human vote into the aggregates."""


def record_imported_votes(*, project: Project, votes: Sequence[Vote], new_pairs: Sequence[Pair]) -> None:
    """Fold a batch of imported votes into the aggregates."""
