"""The record types every layer passes around: no Django, no torch.

- `PreferenceRecord`: one pair as a file holds it, with its votes
  (`ImportedVote`, in pair terms: a = response_a).
- `TrainingPair`: what the trainer consumes, a prompt with a chosen and a
  rejected response, labelled by the one label rule (`preferences.labels`),
  or by a label model (`preferences.label_models`) with a soft label
  `p_chosen` (`soft_training_pair`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from preferences.labels import Tally

IMPORTED_ANNOTATOR = "imported"  # the annotator of a TRL row's single vote


@dataclass(frozen=True)
class ImportedVote:
    annotator: str
    choice: str  # one of labels.CHOICES, in pair terms (a = response_a)
    strength: int | None = None
    rationale: str = ""


@dataclass(frozen=True)
class PreferenceRecord:
    prompt: str
    response_a: str
    response_b: str
    votes: tuple[ImportedVote, ...] = ()
    external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    gold: str | None = None  # "a" or "b" on a gold pair (its known answer, in pair terms); None otherwise

    def swapped(self) -> PreferenceRecord:
        """The same record with its responses (and its votes) the other way round."""
        flip = {"a": "b", "b": "a"}
        return PreferenceRecord(
            prompt=self.prompt,
            response_a=self.response_b,
            response_b=self.response_a,
            votes=tuple(
                ImportedVote(v.annotator, flip.get(v.choice, v.choice), v.strength, v.rationale) for v in self.votes
            ),
            external_id=self.external_id,
            metadata=self.metadata,
            gold=flip.get(self.gold, self.gold),
        )


@dataclass(frozen=True)
class TrainingPair:
    """What the trainer consumes: a prompt and a chosen/rejected response."""

    prompt: str
    chosen: str
    rejected: str
    strength: int | None = None  # 1-3 when annotators gave one; feeds the margin
    pair_id: str | None = None
    # P(chosen is better), in [0.5, 1], from a label model; None is a hard label (1.0).
    p_chosen: float | None = None


def record_to_training_pair(record: PreferenceRecord) -> TrainingPair | None:
    """The record labelled by the label rule, as a chosen/rejected pair; None when it has no winner.

    The strength is the median (low) of the winning side's strengths.
    """
    winner = Tally.of(v.choice for v in record.votes).winner
    if winner is None:
        return None
    strengths = [v.strength for v in record.votes if v.choice == winner and v.strength]
    strength = int(statistics.median_low(strengths)) if strengths else None
    chosen, rejected = (
        (record.response_a, record.response_b) if winner == "a" else (record.response_b, record.response_a)
    )
    return TrainingPair(record.prompt, chosen, rejected, strength, record.external_id)


def soft_training_pair(
    prompt: str,
    response_a: str,
    response_b: str,
    p_a: float,
    *,
    strength: int | None = None,
    pair_id: str | None = None,
) -> TrainingPair:
    """A pair labelled by a label model's P(response_a is better): chosen is the favoured side
    (a when p_a >= 0.5), p_chosen = max(p_a, 1 - p_a).

    >>> soft_training_pair("q", "A", "B", 0.2).chosen, soft_training_pair("q", "A", "B", 0.2).p_chosen
    ('B', 0.8)
    """
    if not 0.0 <= p_a <= 1.0:
        raise ValueError(f"p_a must be a probability in [0, 1], not {p_a!r}")
    if p_a >= 0.5:
        return TrainingPair(prompt, response_a, response_b, strength, pair_id, p_chosen=float(p_a))
    return TrainingPair(prompt, response_b, response_a, strength, pair_id, p_chosen=float(1.0 - p_a))
