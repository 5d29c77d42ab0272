"""Label models: from many annotators' votes to each pair's P(a better) and each annotator's reliability.

No Django, no torch. The crowdsourcing models come from crowd-kit (pinned
in requirements.txt); this module adapts the project's votes to them and
reads back two things:

- `p_a`: P(response_a is the better response), for every pair with at least
  one decisive (a or b) vote. Gold pairs get none: they never train.
- `reliability`: per annotator, the model's estimate of the share of their
  decisive votes that are right, 0..1, higher is better.

The models (`LABEL_MODELS`):

- ``majority``: the project's one label rule (`preferences.labels.Tally`,
  ties and both-bad votes count as ties). p_a is 1.0 or 0.0 where the rule
  has a winner; pairs without one are left out. Reliability is leave-one-out
  agreement: the share of an annotator's decisive votes that match the label
  rule's winner of the *other* votes on the pair (the gold answer on a gold
  pair). Votes with no such reference are not scored, and `decisive_votes`
  counts the scored ones: with one vote per pair, majority knows nothing
  about anyone.
- ``dawid_skene`` (Dawid and Skene 1979): one 2x2 confusion matrix per
  annotator and a class prior, fitted by EM. Gold pairs' posteriors are held
  at their answer in every EM step (crowd-kit's ``true_labels``), so gold
  votes pin the confusion matrices. Reliability = sum_c prior_c * P(vote c | truth c).
- ``mace`` (Hovy et al. 2013): each annotator either knows the answer
  (probability = competence) or spams from a private distribution.
  Reliability = competence + (1 - competence) / 2, the accuracy under MACE's
  uniform truth prior. crowd-kit's MACE has no gold hook: gold pairs' votes
  go in as ordinary votes (their agreement counts, the answer does not).
- ``glad`` (Whitehill et al. 2009): annotator ability alpha and pair
  difficulty beta, P(right) = sigmoid(alpha * exp(beta)). Gold pairs'
  posteriors are held at their answer in every E-step (a small subclass of
  crowd-kit's GLAD; crowd-kit only offers class priors). Reliability = the
  mean of P(right) over the annotator's decisive votes.

Only decisive votes go into the crowd models: a tie or both-bad vote says
nothing about which side is better. Pairs with only such votes get no p_a
(they do not train, as under the majority rule).

When every decisive vote says the same side there is nothing to fit (and
the crowd models cannot fit one class): every model then gives each pair
that side and scores each annotator's agreement with it (or with the answer
on a gold pair).

Every model is deterministic: the same votes in the same order give the
same fit (MACE's random restarts use a fixed seed).

The red flag for an unreliable annotator is `reliability_flagged`, the one
rule the dashboard and bench/label_quality.py both use.

    >>> votes = [LabelVote(p, w, "a") for p in range(3) for w in ("x", "y")]
    >>> fit = label_model_fit(votes, model="majority")
    >>> fit.p_a[0], fit.reliability["x"], fit.decisive_votes["x"]
    (1.0, 1.0, 3)
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from preferences.labels import CHOICES, Tally

LABEL_MODELS = ("majority", "dawid_skene", "mace", "glad")  # snake-case names used everywhere (config, CLI, API)

# The flag rule (`reliability_flagged`); tuned with bench/label_quality.py (bench/RESULTS.md).
MIN_VOTES_FOR_FLAG = 20
UNRELIABLE_BELOW = 0.75

DECISIVE = ("a", "b")
_CODE = {"a": 0, "b": 1}  # the crowd models see integer labels: 0 = a, 1 = b


@dataclass(frozen=True)
class LabelVote:
    """One vote, in pair terms."""

    pair: Hashable  # pair id
    annotator: Hashable  # annotator id
    choice: str  # one of preferences.labels.CHOICES ("a", "b", "tie", "both_bad")


@dataclass
class LabelFit:
    model: str
    p_a: dict[Hashable, float] = field(default_factory=dict)
    """P(response_a is better) for every non-gold pair with at least one decisive vote (majority: with a winner)."""
    reliability: dict[Hashable, float] = field(default_factory=dict)
    """Per annotator, 0..1, higher is better: the estimated accuracy of their decisive votes."""
    decisive_votes: dict[Hashable, int] = field(default_factory=dict)
    """Per annotator, the number of a/b votes the fit used (majority: the ones it could score)."""


def reliability_flagged(*, reliability: float | None, decisive_votes: int) -> bool:
    """The one rule for the 'unreliable annotator' red flag.

    True when the annotator has at least MIN_VOTES_FOR_FLAG decisive votes and
    their reliability is below UNRELIABLE_BELOW; an unknown reliability never flags.
    """
    return reliability is not None and decisive_votes >= MIN_VOTES_FOR_FLAG and reliability < UNRELIABLE_BELOW


def label_model_fit(votes: Iterable[LabelVote], *, model: str, gold: Mapping[Hashable, str] | None = None) -> LabelFit:
    """Fit `model` (one of LABEL_MODELS) to the votes.

    `gold` maps pair id -> "a"|"b" for gold pairs: their votes seed or anchor
    the annotators' reliability (see the module docstring for what each model
    does with them), and gold pairs get no p_a entry. Raises ValueError on an
    unknown model, an unknown choice or a gold answer other than a or b.
    """
    if model not in LABEL_MODELS:
        raise ValueError(f"unknown label model {model!r}; expected one of {', '.join(LABEL_MODELS)}")
    gold = dict(gold or {})
    for pair, answer in gold.items():
        if answer not in DECISIVE:
            raise ValueError(f"gold answer for pair {pair!r} must be 'a' or 'b', not {answer!r}")
    votes = list(votes)
    for vote in votes:
        if vote.choice not in CHOICES:
            raise ValueError(f"unknown choice {vote.choice!r}; expected one of {', '.join(CHOICES)}")
    if model == "majority":
        return _majority(votes, gold)
    decisive = [v for v in votes if v.choice in DECISIVE]
    if not decisive:
        return LabelFit(model=model)
    sides = {v.choice for v in decisive}
    if len(sides) == 1:
        return _single_class(model, decisive, gold, sides.pop())
    with warnings.catch_warnings():  # crowd-kit 1.4.2 trips pandas deprecation warnings on every step
        warnings.filterwarnings("ignore", module="crowdkit")
        return _crowd(model, decisive, gold)


def _majority(votes: list[LabelVote], gold: dict[Hashable, str]) -> LabelFit:
    by_pair: dict[Hashable, list[LabelVote]] = defaultdict(list)
    for vote in votes:
        by_pair[vote.pair].append(vote)
    fit = LabelFit(model="majority")
    right: dict[Hashable, int] = defaultdict(int)
    for pair, pair_votes in by_pair.items():
        tally = Tally.of(v.choice for v in pair_votes)
        if pair not in gold and tally.winner is not None:
            fit.p_a[pair] = 1.0 if tally.winner == "a" else 0.0
        for vote in pair_votes:
            if vote.choice not in DECISIVE:
                continue
            if pair in gold:
                reference = gold[pair]
            else:
                others = list(pair_votes)
                others.remove(vote)
                reference = Tally.of(v.choice for v in others).winner
            if reference is None:
                continue
            fit.decisive_votes[vote.annotator] = fit.decisive_votes.get(vote.annotator, 0) + 1
            right[vote.annotator] += vote.choice == reference
    fit.reliability = {a: right[a] / n for a, n in fit.decisive_votes.items()}
    return fit


def _single_class(model: str, decisive: list[LabelVote], gold: dict[Hashable, str], label: str) -> LabelFit:
    """Every decisive vote says the same side: there is nothing to estimate (and the crowd models
    cannot fit one class). Each non-gold pair gets that side; reliability is agreement with it, or with
    the answer on a gold pair."""
    fit = LabelFit(model=model)
    right: dict[Hashable, int] = defaultdict(int)
    for vote in decisive:
        if vote.pair not in gold:
            fit.p_a[vote.pair] = 1.0 if label == "a" else 0.0
        fit.decisive_votes[vote.annotator] = fit.decisive_votes.get(vote.annotator, 0) + 1
        right[vote.annotator] += vote.choice == gold.get(vote.pair, label)
    fit.reliability = {a: right[a] / n for a, n in fit.decisive_votes.items()}
    return fit


def _crowd(model: str, decisive: list[LabelVote], gold: dict[Hashable, str]) -> LabelFit:
    import numpy as np
    import pandas as pd

    pair_code: dict[Hashable, int] = {}
    annotator_code: dict[Hashable, int] = {}
    tasks = np.fromiter((pair_code.setdefault(v.pair, len(pair_code)) for v in decisive), dtype=np.int64)
    workers = np.fromiter(
        (annotator_code.setdefault(v.annotator, len(annotator_code)) for v in decisive), dtype=np.int64
    )
    labels = np.fromiter((_CODE[v.choice] for v in decisive), dtype=np.int64)
    data = pd.DataFrame({"task": tasks, "worker": workers, "label": labels})
    gold_codes = {pair_code[p]: _CODE[a] for p, a in gold.items() if p in pair_code}
    true_labels = pd.Series(gold_codes, dtype=np.int64) if gold_codes else None
    true_labels_index = true_labels.index.rename("task") if true_labels is not None else None
    if true_labels is not None:
        true_labels.index = true_labels_index

    if model == "dawid_skene":
        p_b, accuracy = _dawid_skene(data, true_labels)
    elif model == "mace":
        p_b, accuracy = _mace(data)
    else:
        p_b, accuracy = _glad(data, true_labels)

    pairs = list(pair_code)
    annotators = list(annotator_code)
    counts = np.bincount(workers, minlength=len(annotators))
    fit = LabelFit(model=model)
    fit.p_a = {pair: float(1.0 - p_b[i]) for i, pair in enumerate(pairs) if pair not in gold}
    fit.reliability = {a: float(np.clip(accuracy[i], 0.0, 1.0)) for i, a in enumerate(annotators)}
    fit.decisive_votes = {a: int(counts[i]) for i, a in enumerate(annotators)}
    return fit


def _dawid_skene(data, true_labels):
    """P(b) per task code and accuracy per worker code, from crowd-kit's DawidSkene."""
    import numpy as np
    from crowdkit.aggregation import DawidSkene

    ds = DawidSkene(n_iter=100, tol=1e-5)
    ds.fit(data, true_labels=true_labels)
    n_tasks, n_workers = int(data.task.max()) + 1, int(data.worker.max()) + 1
    p_b = ds.probas_.reindex(index=range(n_tasks), columns=[0, 1]).fillna(0.0)[1].to_numpy()
    priors = ds.priors_.reindex([0, 1]).fillna(0.0).to_numpy()
    # errors_.loc[(worker, observed), truth]: P(observed | truth); the diagonal is P(right | truth).
    errors = ds.errors_.reindex(columns=[0, 1]).fillna(0.0)
    accuracy = np.zeros(n_workers)
    for truth in (0, 1):
        diagonal = errors[truth].xs(truth, level="label").reindex(range(n_workers)).fillna(0.0).to_numpy()
        accuracy += priors[truth] * diagonal
    return p_b, accuracy


def _mace(data):
    import numpy as np
    from crowdkit.aggregation import MACE

    # crowd-kit 1.4.2 seeds every restart with the same random_state, so further restarts repeat the first.
    mace = MACE(n_restarts=1, n_iter=50, random_state=0)
    mace.fit(data)
    n_tasks, n_workers = int(data.task.max()) + 1, int(data.worker.max()) + 1
    p_b = mace.probas_.reindex(index=range(n_tasks), columns=[0, 1]).fillna(0.0)[1].to_numpy()
    # spamming_[:, 1] is P(knowing), the competence (crowd-kit's _e_step multiplies column 0 by the spam strategy).
    workers = data.worker.drop_duplicates().to_numpy()  # MACE factorizes workers in order of appearance
    competence = np.zeros(n_workers)
    competence[workers] = mace.spamming_[:, 1]
    return p_b, competence + (1.0 - competence) / 2.0


def _glad(data, true_labels):
    import numpy as np
    import pandas as pd
    from crowdkit.aggregation import GLAD

    class GoldGLAD(GLAD):
        """GLAD with gold pairs' posteriors held at their answer in every E-step."""

        def _e_step(self, frame):
            frame = super()._e_step(frame)
            if true_labels is not None:
                answer = frame["task"].map(true_labels)
                is_gold = answer.notna()
                frame.loc[is_gold, "posterior"] = (frame.loc[is_gold, "variable"] == answer[is_gold]).astype(float)
                probas = self.probas_.copy()
                rows = probas.index.intersection(true_labels.index)
                probas.loc[rows, :] = 0.0
                for label in (0, 1):
                    probas.loc[rows[true_labels.loc[rows].to_numpy() == label], label] = 1.0
                self.probas_ = probas
            return frame

    glad = GoldGLAD(n_iter=100, tol=1e-5, labels_priors=pd.Series({0: 0.5, 1: 0.5}))
    glad.fit(data)
    n_tasks, n_workers = int(data.task.max()) + 1, int(data.worker.max()) + 1
    p_b = glad.probas_.reindex(index=range(n_tasks), columns=[0, 1]).fillna(0.0)[1].to_numpy()
    alphas = glad.alphas_.reindex(range(n_workers)).to_numpy()
    betas = glad.betas_.reindex(range(n_tasks)).to_numpy()
    p_right = 1.0 / (1.0 + np.exp(-alphas[data.worker.to_numpy()] * np.exp(betas[data.task.to_numpy()])))
    totals = np.bincount(data.worker.to_numpy(), weights=p_right, minlength=n_workers)
    counts = np.bincount(data.worker.to_numpy(), minlength=n_workers)
    return p_b, totals / np.maximum(counts, 1)
