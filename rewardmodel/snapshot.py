"""The training data of a run, read once when the worker starts it.

Which pairs:
- Train-split pairs train; test-split pairs with a label are the held-out
  set, fixed by prompt, so every version is measured on the same prompts.
  Test-split pairs whose votes tie are still scored, for the dashboard's
  model-vs-human agreement. Archived pairs are left out.
- Gold pairs (`Pair.gold`) check annotators; they never train and are never
  held out.

Which votes: everyone's, except those of annotators paused on the project
now (`labeling.selectors.annotator_ids_paused`); an admin's reinstatement
brings their votes back at the next run.

Which labels: the project's label model (`RetrainPolicy.label_model`).
- ``majority``: the one label rule, `preferences.labels`, over the counted
  votes: a pair trains only with a strict, non-tie plurality (`Tally.winner`).
  With nobody paused this reads the tallies `labeling.services` keeps on the
  pair rows; otherwise it recounts the votes.
- a crowdsourcing model (`preferences.label_models`, seeded with the gold
  votes): training pairs are labelled by the posterior's favoured side and
  carry `p_chosen`, the soft label the Bradley-Terry loss weighs.

The held-out labels always come from the label rule over the counted votes,
whatever the label model: versions trained under different label models are
measured against the same human labels, and the promotion gate compares like
with like.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median_low

from django.utils import timezone

from labeling.models import Pair, Project, Split, Vote
from labeling.selectors import annotator_ids_paused, label_model_inputs
from preferences.label_models import label_model_fit
from preferences.labels import Tally, category_of
from preferences.records import TrainingPair

MAJORITY = "majority"


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
    label_model: str = MAJORITY
    labels: dict = field(default_factory=dict)  # what the labels came from, recorded on the run

    @property
    def eval_voted_pairs(self) -> list[VotedTestPair]:
        """The test pairs behind `eval_pairs`, in the same order."""
        return [p for p in self.test_pairs if p.winner is not None]


def _tallies_without(project: Project, paused: set[int]) -> dict[int, Tally]:
    """Each pair's tally over the votes of annotators not in `paused`."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = (
        Vote.objects.filter(project=project)
        .exclude(annotator_id__in=paused)
        .values_list("pair_id", "choice")
        .iterator(chunk_size=5000)
    )
    for pair_id, choice in rows:
        counts[pair_id][("a", "b", "tie").index(category_of(choice))] += 1
    return {pair_id: Tally(*c) for pair_id, c in counts.items()}


def _posteriors(project: Project, model: str) -> tuple[dict[int, float], dict]:
    """P(response_a is better) per non-gold pair under `model`, and a summary of the fit."""
    votes, gold = label_model_inputs(project=project, leave_out_paused=True)
    fit = label_model_fit(votes, model=model, gold=gold)
    p_a = {pair_id: p for pair_id, p in fit.p_a.items() if pair_id not in gold}
    summary = {"annotators": len(fit.reliability), "gold_pairs": len(gold)}
    return p_a, summary


def training_snapshot_take(*, project: Project, label_model: str = MAJORITY) -> Snapshot:
    """Read the project's labelled pairs and fingerprint them (ids, tallies and, when used, soft labels)."""
    snapshot = Snapshot(taken_at=timezone.now(), label_model=label_model)
    paused = annotator_ids_paused(project=project)
    # Strengths are rare (only projects that ask, or imports that carry
    # them), so they come from one small query rather than every vote.
    strengths: dict[tuple[int, str], list[int]] = defaultdict(list)
    for pair_id, choice, strength in (
        Vote.objects.filter(project=project, strength__isnull=False)
        .exclude(annotator_id__in=paused)
        .values_list("pair_id", "choice", "strength")
    ):
        strengths[(pair_id, choice)].append(strength)
    recounted = _tallies_without(project, paused) if paused else None
    p_a, fit_summary = _posteriors(project, label_model) if label_model != MAJORITY else ({}, {})

    digest = hashlib.sha256()
    if label_model != MAJORITY or paused:
        # Only then: a majority snapshot with nobody paused keeps the fingerprint it always had.
        digest.update(f"labels={label_model};paused={sorted(paused)};".encode())
    soft_labels: list[float] = []
    rows = (
        Pair.objects.filter(project=project, vote_count__gt=0, archived=False, gold="")
        .order_by("id")
        .values_list("id", "split", "prompt", "response_a", "response_b", "votes_a", "votes_b", "votes_tie")
    )
    for pair_id, split, prompt, a, b, votes_a, votes_b, votes_tie in rows.iterator(chunk_size=2000):
        tally = Tally(votes_a, votes_b, votes_tie) if recounted is None else recounted.get(pair_id, Tally(0, 0, 0))
        if tally.total == 0:
            continue  # every vote came from paused annotators
        digest.update(f"{pair_id}:{split}:{tally.a}:{tally.b}:{tally.tie};".encode())
        snapshot.n_votes += tally.total
        winner = tally.winner
        if split == Split.TEST:
            snapshot.test_pairs.append(VotedTestPair(pair_id, prompt, a, b, winner))
        p_chosen = None
        if split == Split.TRAIN and label_model != MAJORITY:
            if pair_id not in p_a:
                continue  # no decisive vote: nothing to learn from, as under the label rule
            winner = "a" if p_a[pair_id] >= 0.5 else "b"
            p_chosen = max(p_a[pair_id], 1.0 - p_a[pair_id])
            digest.update(f"{p_chosen:.4f};".encode())
            soft_labels.append(p_chosen)
        if winner is None:
            continue
        won = strengths.get((pair_id, winner))
        chosen, rejected = (a, b) if winner == "a" else (b, a)
        pair = TrainingPair(
            prompt, chosen, rejected, int(median_low(won)) if won else None, str(pair_id), p_chosen=p_chosen
        )
        (snapshot.eval_pairs if split == Split.TEST else snapshot.train_pairs).append(pair)
    snapshot.sha256 = digest.hexdigest()
    snapshot.labels = {
        "label_model": label_model,
        "paused_annotators_left_out": len(paused),
        **fit_summary,
        **({"mean_p_chosen": round(sum(soft_labels) / len(soft_labels), 4)} if soft_labels else {}),
    }
    return snapshot
