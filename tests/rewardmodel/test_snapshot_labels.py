"""Which votes and pairs train, and with which labels: gold pairs, paused annotators, the label model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from django.utils import timezone

from labeling import services as labeling_services
from labeling.models import Annotator, AnnotatorStanding, Pair, Split
from preferences.records import ImportedVote, PreferenceRecord
from rewardmodel import execution, services, training
from rewardmodel.models import ModelVersion, TrainingRun
from rewardmodel.snapshot import training_snapshot_take
from rewardmodel.training.data import fingerprint


def _crowd_records(n: int, *, seed: int = 0) -> list[PreferenceRecord]:
    """Pairs with a careful and a careless answer, voted by two careful raters (right 90% of the time)
    and three who click at random.

    The careful answer is response_a on even pairs and response_b on odd ones.
    Whenever the three careless raters happen to agree (one pair in four),
    the majority follows them, right or wrong; a reliability model that has
    learnt who is careful follows the careful raters.
    """
    rng = random.Random(seed)
    records = []
    for i in range(n):
        good, bad = f"A careful, correct answer about topic {i}, with an example.", f"meh {i}"
        right = "a" if i % 2 == 0 else "b"
        wrong = "b" if right == "a" else "a"
        votes = [ImportedVote(f"careful-{k}", right if rng.random() < 0.9 else wrong) for k in range(2)]
        votes += [ImportedVote(f"careless-{k}", rng.choice("ab")) for k in range(3)]
        records.append(
            PreferenceRecord(
                prompt=f"question {i}: explain topic {i}",
                response_a=good if right == "a" else bad,
                response_b=bad if right == "a" else good,
                votes=tuple(votes),
            )
        )
    return records


def _project(slug: str, n: int = 80, test_percent: int = 25):
    project = labeling_services.project_create(slug=slug, test_percent=test_percent)
    labeling_services.pairs_import_batch(project=project, records=_crowd_records(n), shuffle_sides=False)
    return project


def _pause(project, external_id: str) -> None:
    annotator = Annotator.objects.get(external_id=external_id)
    AnnotatorStanding.objects.update_or_create(
        project=project, annotator=annotator, defaults={"paused_at": timezone.now(), "pause_reason": "test"}
    )


@pytest.mark.parametrize("label_model", ["majority", "dawid_skene"])
def test_gold_pairs_never_train_and_are_never_held_out(db, label_model):
    # given a project where some pairs of both splits are gold
    project = _project(f"gold-{label_model.replace('_', '-')}")
    gold_ids = set(Pair.objects.filter(project=project).order_by("id").values_list("id", flat=True)[:20])
    Pair.objects.filter(id__in=gold_ids).update(gold="a")
    assert set(Pair.objects.filter(id__in=gold_ids).values_list("split", flat=True)) == {
        Split.TRAIN,
        Split.TEST,
    }
    # when the snapshot is taken
    snap = training_snapshot_take(project=project, label_model=label_model)
    # then no gold pair trains, is held out, or is scored for agreement
    used = {int(p.pair_id) for p in snap.train_pairs + snap.eval_pairs} | {p.pair_id for p in snap.test_pairs}
    assert used and not used & gold_ids
    # and their votes are not counted among the training votes
    assert snap.n_votes == 5 * (80 - 20)


def test_a_paused_annotators_votes_leave_training_until_reinstated(db):
    # given five raters on every pair, two of them careless
    project = _project("paused")
    before = training_snapshot_take(project=project)
    assert before.n_votes == 5 * 80
    # when the three careless raters are paused
    for k in range(3):
        _pause(project, f"careless-{k}")
    after = training_snapshot_take(project=project)
    # then only the careful raters' votes count: a pair trains only where both agree, with their answer
    assert after.n_votes == 2 * 80
    careful = {r.prompt: {v.choice for v in r.votes if v.annotator.startswith("careful")} for r in _crowd_records(80)}
    assert after.train_pairs
    for p in after.train_pairs:
        pair = Pair.objects.get(pk=p.pair_id)
        (agreed,) = careful[p.prompt]  # imported without shuffling: pair terms are the records' terms
        assert p.chosen == (pair.response_a if agreed == "a" else pair.response_b)
    assert before.sha256 != after.sha256
    assert after.labels["paused_annotators_left_out"] == 3
    # and the labels the pair rows carry (every vote) disagreed on some pairs
    assert any(p.chosen.startswith("meh") for p in before.train_pairs)
    # when an admin reinstates them, their votes count again
    AnnotatorStanding.objects.filter(project=project).update(paused_at=None, reinstated_at=timezone.now())
    again = training_snapshot_take(project=project)
    assert again.n_votes == 5 * 80 and again.sha256 == before.sha256


def test_dawid_skene_labels_are_soft_and_side_with_the_reliable_raters(db):
    # given careful raters and random clickers, who outvote the careful ones on about a quarter of the pairs
    project = _project("ds")
    majority = training_snapshot_take(project=project, label_model="majority")
    majority_wrong = sum(p.chosen.startswith("meh") for p in majority.train_pairs)
    assert majority_wrong >= 8
    # when the labels come from Dawid-Skene
    snap = training_snapshot_take(project=project, label_model="dawid_skene")
    # then every training pair carries a soft label, and the model sides with the careful raters
    assert snap.train_pairs and all(0.5 <= p.p_chosen <= 1.0 for p in snap.train_pairs)
    wrong = [p for p in snap.train_pairs if p.chosen.startswith("meh")]
    assert len(wrong) < majority_wrong / 2
    assert 0.5 < snap.labels["mean_p_chosen"] < 1.0 and snap.labels["label_model"] == "dawid_skene"
    # and held-out labels still come from the majority rule, as for every version
    assert [(p.pair_id, p.chosen) for p in snap.eval_pairs] == [(p.pair_id, p.chosen) for p in majority.eval_pairs]
    assert snap.sha256 != majority.sha256
    # while majority pairs stay hard labels
    assert all(p.p_chosen is None for p in majority.train_pairs)


@pytest.mark.django_db(transaction=True)
def test_a_run_under_the_dawid_skene_policy_trains_on_soft_labels_and_records_the_model(
    rm_settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given a project whose policy takes labels from Dawid-Skene, and a queued fine-tune
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)
    project = _project("ds-run", n=60)
    services.retrain_policy_update(project=project, label_model="dawid_skene")
    trained_on = []
    real_train = training.train

    def train_and_keep_the_pairs(config, train_pairs, eval_pairs, **kwargs):
        trained_on.extend(train_pairs)
        return real_train(config, train_pairs, eval_pairs, **kwargs)

    monkeypatch.setattr(training, "train", train_and_keep_the_pairs)  # the worker imports it when it runs
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)
    # when a worker executes it (in-process, with the real tiny engine)
    outcome = execution.training_run_execute(run_id=run.pk, task_id="t-ds", host="here")
    run.refresh_from_db()
    assert outcome == "succeeded", run.error
    # then the engine got soft labels
    assert trained_on and all(p.p_chosen is not None and 0.5 <= p.p_chosen <= 1.0 for p in trained_on)
    assert any(p.p_chosen < 1.0 for p in trained_on)
    # and the run and its version record the label model
    assert run.label_model == "dawid_skene"
    assert run.metrics["labels"]["label_model"] == "dawid_skene"
    version = ModelVersion.objects.get(run=run)
    assert version.metrics["labels"]["label_model"] == "dawid_skene"
    meta = json.loads((Path(version.artifact_dir) / "reward_meta.json").read_text())
    assert meta["train_data_sha256"] == fingerprint(trained_on)
