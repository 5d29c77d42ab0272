"""The worker's flow run in-process with the real (tiny) engine: snapshot,
train, publish, predictions, promotion, and each way it can end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeling.models import Pair, Split
from preferences.labels import Tally
from rewardmodel import artifacts, execution, services
from rewardmodel.models import ModelVersion, PairPrediction, RetrainPolicy, TrainingRun
from rewardmodel.promotion import FIGURES

Status = TrainingRun.Status
# A learning rate too small to move the tiny model: with this seed, its untrained
# head prefers the wrong side of every fixture pair (see test_worse_version_...).
WEAK = {"lr": 1e-9, "seed": 1}

# The heartbeat thread writes through its own connection, as on a worker:
# it must not wait behind a test transaction holding SQLite's write lock.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_broker(monkeypatch):
    """These tests call the worker's code directly: keep on_commit from sending messages."""
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)


def _request(project):
    return services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)


def _visible_folders(project) -> list[Path]:
    root = artifacts.project_dir(project_id=project.pk)
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_run_trains_publishes_and_promotes_first_version(
    labelled_project, no_broker, django_capture_on_commit_callbacks
):
    # given a project with labelled train and test pairs, and a queued run
    with django_capture_on_commit_callbacks(execute=True):
        run = _request(labelled_project)
    # when a worker executes it
    outcome = execution.training_run_execute(run_id=run.pk, task_id="t-1", host="here")
    # then the run succeeded and produced the first, active version
    run.refresh_from_db()
    assert outcome == "succeeded", run.error
    assert run.status == Status.SUCCEEDED and run.attempt == 1 and run.progress == 1.0
    assert run.promoted is True and "first version" in run.promotion_note
    version = ModelVersion.objects.get(run=run)
    assert version.number == 1 and version.is_active
    assert 0.0 <= version.metrics["held_out_accuracy"] <= 1.0
    assert run.metrics["n_train"] == run.n_train_pairs > 0
    assert len(run.snapshot_hash) == 64 and run.snapshot_at is not None
    # and its folder is published whole, with matching checksums, and no temp folder left
    folder = Path(version.artifact_dir)
    assert _visible_folders(labelled_project) == [folder]
    assert not list(artifacts.project_dir(project_id=labelled_project.pk).glob(".tmp-*"))
    assert "reward_meta.json" in version.checksums
    assert artifacts.checksums_mismatched(folder=folder, expected=version.checksums) == []
    assert json.loads((folder / "reward_meta.json").read_text())["config"]["output_dir"]


def test_predictions_cover_every_voted_test_pair_in_pair_terms(labelled_project, no_broker):
    # given a run trained on pairs where a usually wins, some test pairs tied
    run = _request(labelled_project)
    execution.training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get(run=run)
    # when we read its predictions
    predictions = {p.pair_id: p for p in PairPrediction.objects.filter(version=version)}
    test_pairs = Pair.objects.filter(project=labelled_project, split=Split.TEST, vote_count__gt=0)
    # then every voted test pair has one, ties included
    assert set(predictions) == set(test_pairs.values_list("pk", flat=True))
    ties = [p for p in test_pairs if Tally(p.votes_a, p.votes_b, p.votes_tie).winner is None]
    assert ties, "the fixture must hold tie-majority test pairs"
    # and margins are r_a - r_b: the model learned "a" wins, so most margins are positive
    decided = [predictions[p.pk].margin for p in test_pairs if p not in ties]
    assert sum(m > 0 for m in decided) / len(decided) == pytest.approx(version.metrics["held_out_accuracy"])


def test_worse_version_is_kept_but_not_promoted(labelled_project, no_broker):
    # given a live version that learned the labels
    first = _request(labelled_project)
    execution.training_run_execute(run_id=first.pk)
    active = ModelVersion.objects.get(run=first)
    # when a run with a learning rate too small to learn anything finishes (an untrained seed
    # that happens to prefer the wrong side on these pairs)
    services.retrain_policy_update(project=labelled_project, train_config=WEAK)
    second = _request(labelled_project)
    execution.training_run_execute(run_id=second.pk)
    # then it succeeded, its version exists, and the old version stays live
    second.refresh_from_db()
    assert second.status == Status.SUCCEEDED
    assert second.promoted is False and "Not promoted: too few held-out pairs to tell" in second.promotion_note
    assert ModelVersion.objects.get(run=second).is_active is False
    assert ModelVersion.objects.get(pk=active.pk).is_active is True
    # and the run carries the paired figures, measured on the same pairs
    figures = second.promotion
    assert list(figures) == list(FIGURES)
    assert figures["decision"] == "refused" and figures["n"] == second.n_test_pairs
    assert figures["candidate_accuracy"] < figures["active_accuracy"]
    assert figures["difference"] == pytest.approx(figures["candidate_accuracy"] - figures["active_accuracy"])


def test_engine_error_fails_the_run_with_its_message_and_frees_the_project(labelled_project, no_broker, settings):
    # given a policy whose backbone (allowed here) does not exist
    settings.RM_ALLOWED_BACKBONES = ["/nonexistent/backbone"]
    services.retrain_policy_update(project=labelled_project, train_config={"backbone": "/nonexistent/backbone"})
    run = _request(labelled_project)
    # when the run executes
    assert execution.training_run_execute(run_id=run.pk) == "failed"
    # then it is failed with the engine's message, nothing is published, and a new run may start
    run.refresh_from_db()
    assert run.status == Status.FAILED and "nonexistent" in run.error
    assert _visible_folders(labelled_project) == []
    assert not ModelVersion.objects.exists()
    services.retrain_policy_update(project=labelled_project, train_config={})
    assert _request(labelled_project).status == Status.QUEUED


def test_too_little_data_fails_with_a_clear_message(db, rm_settings, no_broker):
    # given a project with no votes
    from labeling import services as labeling_services

    project = labeling_services.project_create(slug="empty")
    run = _request(project)
    # when it runs
    execution.training_run_execute(run_id=run.pk)
    # then it fails saying what is missing
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "Not enough labelled data: 0 train-split" in run.error


def test_cancel_during_training_stops_without_a_version(labelled_project, no_broker, monkeypatch):
    # given a run whose Cancel arrives while the engine trains
    services.retrain_policy_update(project=labelled_project, train_config={"epochs": 50})
    run = _request(labelled_project)
    from rewardmodel.heartbeat import RunHeartbeat

    real = RunHeartbeat.on_progress
    calls = {"n": 0}

    def on_progress(self, p):
        calls["n"] += 1
        if calls["n"] == 3:
            services.training_run_cancel(run=TrainingRun.objects.get(pk=run.pk))
            self._beat()  # what the heartbeat thread does within RM_HEARTBEAT_SECONDS
        return real(self, p)

    monkeypatch.setattr(RunHeartbeat, "on_progress", on_progress)
    # when it executes
    outcome = execution.training_run_execute(run_id=run.pk)
    # then the engine stopped early, the run is cancelled, and nothing was published
    run.refresh_from_db()
    assert outcome == "cancelled" and run.status == Status.CANCELLED
    assert calls["n"] < 20
    assert _visible_folders(labelled_project) == []
    assert not ModelVersion.objects.exists()


def test_attempt_that_lost_its_claim_writes_nothing(labelled_project, no_broker, monkeypatch):
    # given a run that the reconciler hands to another attempt while this one trains
    run = _request(labelled_project)
    from rewardmodel.heartbeat import RunHeartbeat

    real = RunHeartbeat.on_progress

    def on_progress(self, p):
        if not self.lost:
            TrainingRun.objects.filter(pk=run.pk).update(attempt=self.attempt + 1)  # someone else's now
            self._beat()
        return real(self, p)

    monkeypatch.setattr(RunHeartbeat, "on_progress", on_progress)
    # when this attempt goes on
    outcome = execution.training_run_execute(run_id=run.pk)
    # then it stops and records nothing: the run stays the other attempt's
    run.refresh_from_db()
    assert outcome == "lost"
    assert run.status == Status.RUNNING and run.attempt == 2
    assert not ModelVersion.objects.exists()
    assert _visible_folders(labelled_project) == []


def test_duplicate_message_does_not_run_twice(labelled_project, no_broker):
    # given a run that one worker already executed
    run = _request(labelled_project)
    execution.training_run_execute(run_id=run.pk)
    # when the same message is delivered again
    outcome = execution.training_run_execute(run_id=run.pk)
    # then nothing runs and there is still one version
    assert outcome == "skipped"
    run.refresh_from_db()
    assert run.attempt == 1
    assert ModelVersion.objects.count() == 1


def test_policy_overrides_reach_the_engine(labelled_project, no_broker):
    # given a policy asking for 1 epoch and a 2-member ensemble
    RetrainPolicy.objects.create(project=labelled_project, train_config={"epochs": 1, "ensemble": 2})
    run = _request(labelled_project)
    # when it runs
    execution.training_run_execute(run_id=run.pk)
    # then the stored config and the model reflect them, and ensemble disagreement is recorded per pair
    run.refresh_from_db()
    assert run.config["epochs"] == 1 and run.config["ensemble"] == 2 and run.config["random_init"] is True
    version = ModelVersion.objects.get(run=run)
    assert version.metrics["ensemble"] == 2
    assert PairPrediction.objects.filter(version=version, disagreement__isnull=False).exists()


def test_pairs_with_an_empty_response_are_trained_on(rm_settings, no_broker):
    from labeling import services as labeling_services
    from tests.rewardmodel.conftest import labelled_records

    # given a project where the worse answer of every pair is empty (a model that said nothing)
    project = labeling_services.project_create(slug="silent", test_percent=25)
    records = [r.__class__(r.prompt, r.response_a, "", r.votes) for r in labelled_records(40)]
    labeling_services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    # when a run trains
    run = _request(project)
    execution.training_run_execute(run_id=run.pk)
    # then it trained on them and scored the held-out ones
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert run.n_train_pairs > 20 and run.metrics["held_out_accuracy"] is not None


def test_a_run_past_the_soft_time_limit_fails_saying_so_and_leaves_nothing(labelled_project, no_broker, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from rewardmodel.heartbeat import RunHeartbeat

    # given a run whose worker signals the soft time limit while it trains (Celery raises it in the task)
    def on_progress(self, p):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(RunHeartbeat, "on_progress", on_progress)
    run = _request(labelled_project)
    # when it executes
    assert execution.training_run_execute(run_id=run.pk) == "failed"
    # then it failed with the reason, and nothing was published
    run.refresh_from_db()
    assert run.status == Status.FAILED and run.error.startswith("Time limit reached")
    assert _visible_folders(labelled_project) == [] and not ModelVersion.objects.exists()
