"""Test data for the dashboard: a project with imported and live votes and two versions."""

from __future__ import annotations

import random
from datetime import timedelta

from accounts import roles
from dashboard.aggregates import on_version_activated
from labeling import services
from labeling.models import Pair
from preferences.records import ImportedVote, PreferenceRecord
from rewardmodel.models import ModelVersion, PairPrediction, TrainingRun
from tests.conftest import make_user


def engine_metrics(held_out: float, train: float, *, n_train: int, n_eval: int = 40) -> dict:
    """A TrainResult.metrics-shaped dict (the keys the engine writes)."""
    return {
        "held_out_accuracy": held_out,
        "held_out_accuracy_ci": [held_out - 0.08, held_out + 0.07],
        "eval_loss": 0.62,
        "train_accuracy": train,
        "ece": 0.05,
        "reliability": [
            {
                "bin_lo": 0.5 + i * 0.05,
                "bin_hi": 0.55 + i * 0.05,
                "confidence": 0.525 + i * 0.05,
                "accuracy": min(1.0, 0.5 + i * 0.055),
                "count": 4,
            }
            for i in range(10)
        ],
        "length_buckets": [
            {"bucket": "< -50", "lo": None, "hi": -50, "accuracy": 0.55, "count": 10},
            {"bucket": "-50..49", "lo": -50, "hi": 50, "accuracy": 0.7, "count": 20},
            {"bucket": ">= 50", "lo": 50, "hi": None, "accuracy": 0.8, "count": 10},
        ],
        "length_baseline_accuracy": 0.58,
        "p_model_prefers_longer": 0.9,
        "p_human_prefers_longer": 0.6,
        "reward_mean": 0.1,
        "reward_std": 1.2,
        "extreme_reward_share": 0.0,
        "swap_max_abs_diff": 1e-6,
        "ensemble_disagreement": None,
        "pairs_per_second": 50.0,
        "n_train": n_train,
        "n_eval": n_eval,
    }


def make_version(project, number: int, metrics: dict, *, active: bool) -> ModelVersion:
    run = TrainingRun.objects.create(
        project=project,
        trigger="cli",
        status="succeeded",
        metrics=metrics,
        n_train_pairs=metrics["n_train"],
        n_test_pairs=metrics["n_eval"],
    )
    if active:
        ModelVersion.objects.filter(project=project, is_active=True).update(is_active=False)
    return ModelVersion.objects.create(
        project=project, run=run, number=number, artifact_dir=f"/tmp/v{number}", metrics=metrics, is_active=active
    )


def populate(project, django_user_model, *, pairs: int = 60, seed: int = 0) -> dict:
    """Imported votes from three external raters, live votes from two users (one always clicks left),
    and two versions, the second active with predictions on every held-out pair."""
    rng = random.Random(seed)
    records = []
    for i in range(pairs):
        truth = rng.choice("ab")
        votes = tuple(
            ImportedVote(f"rater{k}", truth if rng.random() < 0.8 else rng.choice(["a", "b", "tie", "both_bad"]))
            for k in range(3)
        )
        records.append(
            PreferenceRecord(
                prompt=f"question {i}",
                response_a=f"answer {i} " * (1 + i % 4),
                response_b=f"reply {i} " * (1 + (i + 2) % 4),
                votes=votes,
            )
        )
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    project.overlap_target = 5
    project.save()
    users = [make_user(django_user_model, name, roles.ANNOTATOR) for name in ("lefty", "steady")]
    project.members.add(*users)
    for user in users:
        for _ in range(pairs // 2):
            assignment = services.assignment_next(project=project, user=user)
            if assignment is None:
                break
            choice = "left" if user.username == "lefty" else rng.choice(["left", "right"])
            services.vote_submit(
                assignment_id=assignment.pk,
                user=user,
                choice=choice,
                latency_ms=4000,
                now=assignment.served_at + timedelta(seconds=5),
            )
    make_version(project, 1, engine_metrics(0.62, 0.70, n_train=30), active=False)
    active = make_version(project, 2, engine_metrics(0.71, 0.95, n_train=pairs - 10), active=True)
    test_pairs = list(Pair.objects.filter(project=project, split="test", vote_count__gt=0))
    PairPrediction.objects.bulk_create(
        [PairPrediction(version=active, pair=p, margin=1.0 if p.votes_a >= p.votes_b else -1.0) for p in test_pairs]
    )
    on_version_activated(version=active)
    return {"users": users, "active": active, "test_pairs": test_pairs}
