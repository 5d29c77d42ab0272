"""Dashboard aggregates that change when a model version becomes active.

`rewardmodel.services` calls `on_version_activated` after a promotion or a
rollback, in the same transaction, so per-annotator agreement with the
model always refers to the active version. Between activations, new votes
on held-out pairs keep these figures current as they are folded in
(labeling.aggregates).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from django.db import transaction

from labeling.aggregates import annotator_stats_update_rows, choice_tally, project_stats_locked
from labeling.models import AnnotatorStats, Split, Vote
from rewardmodel.agreement import majority_label, pick_of_margin


def on_version_activated(*, version) -> None:
    """Recompute the model-vs-human aggregates for `version`'s project.

    Reads the version's predictions on held-out pairs once, and the votes on
    those pairs that are in the aggregates (live votes still waiting to be
    folded are counted against this version when they are): the project's
    agreement with the majority label, and each annotator's agreement with
    the model's pick over their decisive votes on those pairs.
    """
    from rewardmodel.models import PairPrediction  # added by the retraining work; imported late on purpose

    with transaction.atomic():
        stats = project_stats_locked(project_id=version.project_id)
        stats.active_version_id = version.pk
        sides: dict[int, str] = {}
        for pair_id, margin in (
            PairPrediction.objects.filter(version=version, pair__split=Split.TEST)
            .values_list("pair_id", "margin")
            .iterator(chunk_size=5000)
        ):
            side = pick_of_margin(margin)
            if side is not None:
                sides[pair_id] = side

        choices: dict[int, list[str]] = defaultdict(list)
        per_annotator: dict[int, Counter] = {}
        pair_ids = list(sides)
        for start in range(0, len(pair_ids), 2000):
            for annotator_id, pair_id, choice in Vote.objects.filter(
                pair_id__in=pair_ids[start:start + 2000], in_aggregates=True
            ).values_list("annotator_id", "pair_id", "choice"):
                choices[pair_id].append(choice)
                if choice in ("a", "b"):
                    c = per_annotator.setdefault(annotator_id, Counter())
                    c["n"] += 1
                    c["agree"] += choice == sides[pair_id]

        totals = Counter()
        for pair_id, pair_choices in choices.items():
            n_a, n_b, n_tie = choice_tally(pair_choices)
            label = majority_label(n_a=n_a, n_b=n_b, n_tie=n_tie)
            if label not in ("a", "b"):
                continue
            two = len(pair_choices) >= 2
            totals["model_n"] += 1
            totals["model_n2"] += two
            totals["model_agree"] += label == sides[pair_id]
            totals["model_agree2"] += two and label == sides[pair_id]
        for name in ("model_n", "model_agree", "model_n2", "model_agree2"):
            setattr(stats, name, totals[name])
        stats.save()

        AnnotatorStats.objects.filter(project_id=version.project_id).exclude(model_n=0, model_agree=0).update(
            model_n=0, model_agree=0
        )
        ids = sorted(per_annotator)
        for start in range(0, len(ids), 2000):
            rows = list(AnnotatorStats.objects.filter(project_id=version.project_id, annotator_id__in=ids[start:start + 2000]))
            for row in rows:
                row.model_n = per_annotator[row.annotator_id]["n"]
                row.model_agree = per_annotator[row.annotator_id]["agree"]
            annotator_stats_update_rows(rows, ["model_n", "model_agree"])
