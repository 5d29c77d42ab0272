"""The label rule: how a pair's votes become its label. Defined here, once.

A pair's votes are counted into a `Tally` over three categories: a, b and
tie. A both_bad vote counts as a tie: it prefers neither side. The label is
the strict plurality of the tally: "a", "b" or "tie" when one category has
more votes than each of the others, None when the top count is shared or
there are no votes. A pair trains (and counts as held-out) only when its
label is "a" or "b" (`Tally.winner`): a tie or a split carries no
preference to learn from.

Everything that labels pairs goes through `plurality`: the trainer's file
reader, the training snapshot, the exports, the agreement statistics and
the dashboard's fold. The SQL that counts votes into a pair's counters
(labeling/sql.py) follows `category_of`; a property test checks the two
agree on random vote sets.

    >>> Tally.of(["a", "a", "b"]).winner, Tally.of(["a", "both_bad"]).winner, Tally.of(["tie", "tie", "a"]).label
    ('a', None, 'tie')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

CHOICES = ("a", "b", "tie", "both_bad")  # what a vote may say, in pair terms (a = response_a)
CATEGORIES = ("a", "b", "tie")  # what a tally counts


def category_of(choice: str) -> str:
    """The tally category of a vote: a, b or tie (both_bad prefers neither side, so it is a tie)."""
    return "tie" if choice == "both_bad" else choice


@lru_cache(maxsize=4096)
def plurality(n_a: int, n_b: int, n_tie: int) -> str | None:
    """THE label rule: "a", "b" or "tie" when it is the strict plurality, else None.

    None when there are no votes or the top count is shared. Cached: the
    dashboard's fold calls it for every vote it folds in.
    """
    counts = (n_a, n_b, n_tie)
    top = max(counts)
    if top == 0 or counts.count(top) > 1:
        return None
    return CATEGORIES[counts.index(top)]


@dataclass(frozen=True)
class Tally:
    """A pair's votes counted by category; `tie` counts ties and both-bad votes."""

    a: int = 0
    b: int = 0
    tie: int = 0

    @classmethod
    def of(cls, choices: Iterable[str]) -> Tally:
        """The tally of a pair's choices (a, b, tie or both_bad).

        Counted with list.count rather than a Counter: imports and the fold
        run this for every pair they touch.
        """
        choices = list(choices)
        return cls(choices.count("a"), choices.count("b"), choices.count("tie") + choices.count("both_bad"))

    @property
    def total(self) -> int:
        return self.a + self.b + self.tie

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.a, self.b, self.tie)

    @property
    def label(self) -> str | None:
        """The strict plurality category ("a", "b" or "tie"), or None (`plurality`)."""
        return plurality(self.a, self.b, self.tie)

    @property
    def winner(self) -> str | None:
        """The side the pair is labelled with, "a" or "b"; None when its label is a tie or there is none."""
        label = self.label
        return label if label in ("a", "b") else None
