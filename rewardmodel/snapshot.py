"""The training data of a run, read once when the worker starts it.

Labels come from the pair tallies that labeling.services keeps (votes_a,
votes_b, votes_tie) through the one label rule, `preferences.labels`: a
pair trains only when it has a strict, non-tie plurality (`Tally.winner`). Train-split pairs train; test-split pairs
with such a majority are the held-out set, fixed by prompt, so every
version is measured on the same prompts. Test-split pairs whose votes tie
are still scored, for the dashboard's model-vs-human agreement. Archived
pairs are left out.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median_low

from django.utils import timezone

from labeling.models import Pair, Project, Split, Vote
from preferences.labels import Tally
from preferences.records import TrainingPair


@dataclass(frozen=True)
class VotedTestPair:
    """A voted test-split pair, in pair terms (a / b); winner is None on a tie majority."""

    pair_id: int
    prompt: str
    response_a: str
    response_b: str
    winner: str | None


@dataclass
class Snapshot:
    train_pairs: list[TrainingPair] = field(default_factory=list)
    eval_pairs: list[TrainingPair] = field(default_factory=list)  # test pairs with a majority
    test_pairs: list[VotedTestPair] = field(default_factory=list)  # every voted test pair
    n_votes: int = 0
    sha256: str = ""
    taken_at: datetime | None = None

    @property
    def eval_voted_pairs(self) -> list[VotedTestPair]:
        """The test pairs behind `eval_pairs`, in the same order."""
        return [p for p in self.test_pairs if p.winner is not None]


def training_snapshot_take(*, project: Project) -> Snapshot:
    """Read the project's labelled pairs and fingerprint them (ids and tallies)."""
    snapshot = Snapshot(taken_at=timezone.now())
    # Strengths are rare (only projects that ask, or imports that carry
    # them), so they come from one small query rather than every vote.
    strengths: dict[tuple[int, str], list[int]] = defaultdict(list)
    for pair_id, choice, strength in Vote.objects.filter(project=project, strength__isnull=False).values_list(
        "pair_id", "choice", "strength"
    ):
        strengths[(pair_id, choice)].append(strength)

    digest = hashlib.sha256()
    rows = (
        Pair.objects.filter(project=project, vote_count__gt=0, archived=False)
        .order_by("id")
        .values_list("id", "split", "prompt", "response_a", "response_b", "votes_a", "votes_b", "votes_tie")
    )
    for pair_id, split, prompt, a, b, votes_a, votes_b, votes_tie in rows.iterator(chunk_size=2000):
        digest.update(f"{pair_id}:{split}:{votes_a}:{votes_b}:{votes_tie};".encode())
        snapshot.n_votes += votes_a + votes_b + votes_tie
        winner = Tally(votes_a, votes_b, votes_tie).winner
        if split == Split.TEST:
            snapshot.test_pairs.append(VotedTestPair(pair_id, prompt, a, b, winner))
        if winner is None:
            continue
        won = strengths.get((pair_id, winner))
        chosen, rejected = (a, b) if winner == "a" else (b, a)
        pair = TrainingPair(prompt, chosen, rejected, int(median_low(won)) if won else None, str(pair_id))
        (snapshot.eval_pairs if split == Split.TEST else snapshot.train_pairs).append(pair)
    snapshot.sha256 = digest.hexdigest()
    return snapshot
