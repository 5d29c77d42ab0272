"""Heads in the service: their runs, their schedule, their cache, their scores, and the queue they re-order."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import services as account_services
from labeling import services as labeling_services
from labeling.models import Pair, Split
from rewardmodel import features, scoring, selectors, services
from rewardmodel.models import ModelVersion, PairPrediction, QueueOrder, RetrainPolicy, TrainingRun
from rewardmodel.training import RewardScorer
from rewardmodel.training.features import FeatureStore
from tests.conftest import make_records
from tests.rewardmodel.conftest import make_labelled_project, make_version
from tests.rewardmodel.workers import wait_for

Kind, Status = TrainingRun.Kind, TrainingRun.Status


@pytest.fixture
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: sent.append(run_id) or True)
    return sent


def _store_dirs(project) -> list[Path]:
    root = features.project_cache_root(project_id=project.pk)
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


# --------------------------------------------------------------------------- #
# Runs and their schedule
# --------------------------------------------------------------------------- #
def test_a_head_and_a_fine_tune_run_side_by_side_but_never_two_of_a_kind(labelled_project, no_broker):
    head = services.training_run_request(project=labelled_project, trigger="cli", kind=Kind.HEAD)
    finetune = services.training_run_request(project=labelled_project, trigger="cli")
    assert (head.kind, finetune.kind) == (Kind.HEAD, Kind.FINETUNE)
    assert head.config["kind"] == "head" and finetune.config["kind"] == "finetune"
    with pytest.raises(services.RunAlreadyActive) as caught:
        services.training_run_request(project=labelled_project, trigger="cli", kind=Kind.HEAD)
    assert caught.value.run == head


def test_the_head_is_due_after_its_new_votes_and_the_fine_tune_after_its_own(labelled_project):
    policy = services.retrain_policy_update(project=labelled_project, min_new_votes=1000, head_min_new_votes=20)
    now = timezone.now()
    # given 180 imported votes and no run yet: the head (20) is due, the fine-tune (1000) is not
    assert "20 new votes" in selectors.retrain_due_reason(
        project=labelled_project, policy=policy, now=now, kind=Kind.HEAD
    )
    assert selectors.retrain_due_reason(project=labelled_project, policy=policy, now=now) is None
    # when a head ran on all of them, it is not due again until 20 more arrive
    TrainingRun.objects.create(
        project=labelled_project,
        kind=Kind.HEAD,
        trigger="schedule",
        status=Status.SUCCEEDED,
        snapshot_at=now,
        finished_at=now,
    )
    assert selectors.retrain_due_reason(project=labelled_project, policy=policy, now=now, kind=Kind.HEAD) is None
    # and with heads switched off, never
    policy = services.retrain_policy_update(project=labelled_project, head_enabled=False, head_min_new_votes=1)
    later = now + timedelta(days=1)
    assert selectors.retrain_due_reason(project=labelled_project, policy=policy, now=later, kind=Kind.HEAD) is None


def test_the_head_beat_task_queues_only_heads(labelled_project, no_broker):
    services.retrain_policy_update(project=labelled_project, min_new_votes=1)
    started = services.training_runs_schedule_due(kind=Kind.HEAD)
    assert [run.kind for run in started] == [Kind.HEAD]
    assert TrainingRun.objects.filter(project=labelled_project, kind=Kind.FINETUNE).count() == 0


def test_the_retrain_command_takes_a_kind_and_prints_it(labelled_project, no_broker):
    out = StringIO()
    call_command("retrain", "--project", labelled_project.slug, "--kind", "head", stdout=out, stderr=StringIO())
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (line["kind"], line["status"]) == ("head", "queued")


@pytest.mark.worker
@pytest.mark.slow
def test_a_head_run_on_a_worker_goes_live_caches_its_features_and_reorders_the_queue(celery_worker, rm_settings):
    # given a labelled project that orders its queue by uncertainty, with unlabelled pairs waiting
    project = make_labelled_project(acquisition="uncertainty")
    labeling_services.pairs_import_batch(project=project, records=make_records(40, prefix="open"), shuffle_sides=False)
    # when a head run is requested
    run = services.training_run_request(project=project, trigger="cli", kind=Kind.HEAD)
    run = wait_for(
        lambda: (r := TrainingRun.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r,
        timeout=120,
        what="the head run to finish",
    )
    # then it produced a live head version with the fine-tune's metrics and predictions
    assert run.status == Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(run=run)
    assert version.is_active and version.metrics["kind"] == "head"
    assert version.metrics["held_out_accuracy"] is not None and version.metrics["ensemble_disagreement"] is not None
    assert PairPrediction.objects.filter(version=version).exists()
    # and the project's feature cache holds the sides it embedded
    (store_dir,) = _store_dirs(project)
    assert len(FeatureStore(store_dir)) >= 2 * run.n_train_pairs
    # and the queue was re-ordered by the strategy, from this head
    order = wait_for(
        lambda: QueueOrder.objects.filter(project=project, version=version).first(),
        timeout=60,
        what="the queue re-order",
    )
    assert order.strategy == "uncertainty" and order.ordered_pairs > 0


# --------------------------------------------------------------------------- #
# The feature cache
# --------------------------------------------------------------------------- #
def test_a_new_feature_spec_starts_a_new_cache_and_drops_the_old(labelled_project):
    # given a filled cache
    first = features.features_fill(project=labelled_project)
    assert first.embedded_sides == 2 * Pair.objects.filter(project=labelled_project).count()
    assert [p.name for p in _store_dirs(labelled_project)] == [first.key]
    # when filled again, nothing is embedded twice
    assert features.features_fill(project=labelled_project).embedded_sides == 0
    # when the policy changes what a feature is (the layer read), the old cache goes and a new one fills
    services.retrain_policy_update(project=labelled_project, train_config={"feature_layer": -1})
    second = features.features_fill(project=labelled_project)
    assert second.key != first.key and second.removed_stale == [first.key]
    assert [p.name for p in _store_dirs(labelled_project)] == [second.key]
    assert second.embedded_sides == first.embedded_sides


def test_an_import_asks_for_its_pairs_to_be_embedded_after_commit(
    labelled_project, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    from rewardmodel import tasks

    monkeypatch.setattr(tasks.features_fill_task, "apply_async", lambda args, queue: sent.append((args, queue)))
    with django_capture_on_commit_callbacks(execute=True):
        labeling_services.pairs_import_batch(
            project=labelled_project, records=make_records(3, prefix="new"), shuffle_sides=False
        )
    assert sent == [([labelled_project.pk], "default")]


# --------------------------------------------------------------------------- #
# Scoring with a head version
# --------------------------------------------------------------------------- #
def test_the_scoring_api_scores_with_a_live_head(client, labelled_project, tiny_head_dir, admin_user):
    scoring.scorer_cache.clear()
    make_version(labelled_project, tiny_head_dir, kind=Kind.HEAD)
    _, token = account_services.api_token_issue(user=admin_user, name="scoring")
    items = [
        {"prompt": "prompt 1: explain topic 1", "response": "A careful, correct answer about topic 1."},
        {"prompt": "prompt 1: explain topic 1", "response": "meh 1"},
    ]
    response = client.post(
        f"/api/v1/projects/{labelled_project.slug}/score",
        json.dumps({"items": items}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    scorer = RewardScorer.load(tiny_head_dir)
    expected, _ = scorer.score([i["prompt"] for i in items], [i["response"] for i in items])
    assert type(scorer).__name__ == "HeadScorer"
    assert response.json()["raw"] == pytest.approx(expected, abs=1e-4)
    assert response.json()["raw"][0] > response.json()["raw"][1]  # the careful answer wins
    scoring.scorer_cache.clear()


def test_the_runs_api_and_page_say_each_runs_kind(client, labelled_project, admin_user, no_broker):
    run = services.training_run_request(project=labelled_project, trigger="cli", kind=Kind.HEAD)
    client.force_login(admin_user)
    assert client.get(f"/api/v1/runs/{run.pk}").json()["kind"] == "head"
    assert "head" in client.get(f"/runs/{run.pk}/").content.decode()


def test_the_dashboard_shows_the_head_its_age_and_the_strategy(client, labelled_project, tiny_head_dir, reviewer_user):
    version = make_version(labelled_project, tiny_head_dir, kind=Kind.HEAD)
    TrainingRun.objects.filter(pk=version.run_id).update(snapshot_at=timezone.now() - timedelta(minutes=2))
    labelled_project.acquisition = "disagreement"
    labelled_project.save()
    client.force_login(reviewer_user)
    payload = client.get(f"/api/v1/projects/{labelled_project.slug}/metrics").json()
    assert payload["head"]["version"] == 1 and 110 <= payload["head"]["age_seconds"] <= 200
    assert payload["acquisition"]["strategy"] == "disagreement" and "unbiased" in payload["acquisition"]["held_out"]
    assert {p["kind"] for p in payload["learning_curve"]} == {"head"}
    html = client.get(f"/p/{labelled_project.slug}/dashboard/").content.decode()
    assert "disagreement" in html and "2 min" in html


def test_reranking_needs_a_head_and_says_so(labelled_project):
    from rewardmodel import acquisition

    labelled_project.acquisition = "uncertainty"
    refresh = acquisition.queue_order_refresh(project=labelled_project)
    assert refresh.ordered == 0 and refresh.skipped == "no head version yet"


def test_policy_rows_default_to_fresh_heads(labelled_project):
    policy = RetrainPolicy.for_project(labelled_project)
    assert (policy.head_enabled, policy.head_min_new_votes) == (True, 20)
    assert np.isclose(policy.promotion_delta, 0.0)


def test_the_snapshot_leaves_held_out_pairs_to_evaluation(labelled_project):
    from rewardmodel.snapshot import training_snapshot_take

    snapshot = training_snapshot_take(project=labelled_project)
    test_ids = set(Pair.objects.filter(project=labelled_project, split=Split.TEST).values_list("pk", flat=True))
    assert {int(p.pair_id) for p in snapshot.train_pairs}.isdisjoint(test_ids)
