"""The promotion gate end to end, in-process with the real (tiny) engine: versions
compared on the same held-out pairs, scores cached per version and pair, and the
demo project promoting a better model and refusing a worse one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from dashboard import aggregates
from labeling import services as labeling_services
from labeling.demo import DEMO_SLUG
from labeling.models import Pair, Project, Split
from rewardmodel import execution, gate, services
from rewardmodel.models import ModelVersion, PairPrediction, TrainingRun
from rewardmodel.promotion import FIGURES
from tests.rewardmodel.conftest import labelled_records, make_labelled_project

pytestmark = pytest.mark.django_db(transaction=True)

Status = TrainingRun.Status
# Too small a learning rate to move the tiny model: what it scores is its untrained
# seed's. These seeds prefer the wrong side of most of their project's held-out pairs.
WEAK_ON_FIXTURE = {"lr": 1e-9, "seed": 1}
WEAK_ON_DEMO = {"lr": 1e-9, "seed": 3}


@pytest.fixture
def no_broker(monkeypatch):
    monkeypatch.setattr(services, "training_run_enqueue", lambda *, run_id: True)


def _train(project, train_config: dict | None = None) -> TrainingRun:
    services.retrain_policy_update(project=project, train_config=train_config or {})
    run = services.training_run_request(project=project, trigger=TrainingRun.Trigger.ADMIN)
    execution.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    return run


def _voted_test_pair_ids(project) -> set[int]:
    pairs = Pair.objects.filter(project=project, split=Split.TEST, vote_count__gt=0)
    return set(pairs.values_list("pk", flat=True))


def test_the_live_version_is_scored_on_pairs_voted_after_it_trained_once(rm_settings, no_broker):
    # given v1, trained while 40 more pairs had no votes
    project = make_labelled_project(n=60, tie_every=0)
    labeling_services.pairs_import_batch(
        project=project,
        records=[r.__class__(r.prompt, r.response_a, r.response_b) for r in labelled_records(40, prefix="later")],
        shuffle_sides=False,
    )
    v1 = ModelVersion.objects.get(run=_train(project))
    scored_by_v1 = set(PairPrediction.objects.filter(version=v1).values_list("pair_id", flat=True))
    assert scored_by_v1 == _voted_test_pair_ids(project)
    # when those pairs get votes (test-split ones among them) and v2 is trained
    labeling_services.pairs_import_batch(
        project=project, records=labelled_records(40, tie_every=0, prefix="later"), shuffle_sides=False
    )
    held_out_now = _voted_test_pair_ids(project)
    assert held_out_now > scored_by_v1
    run2 = _train(project)
    # then v1 was scored on the new held-out pairs too, and both were compared on all of them
    assert set(PairPrediction.objects.filter(version=v1).values_list("pair_id", flat=True)) == held_out_now
    assert run2.promotion["n"] == len(held_out_now) == run2.n_test_pairs
    # and the dashboard's model-vs-human figures still equal a rebuild from the votes
    assert aggregates.aggregates_check(project=project) == {}
    # and scoring again scores nothing: the margins are cached per version and pair
    from rewardmodel.snapshot import training_snapshot_take

    pairs = training_snapshot_take(project=project).eval_voted_pairs
    assert set(gate.references_prepare(project_id=project.pk, pairs=pairs).values()) == {0}


def test_a_worse_candidate_is_refused_and_a_better_one_promoted(rm_settings, no_broker):
    # given a live version from the weak config
    project = make_labelled_project()
    weak = _train(project, WEAK_ON_FIXTURE)
    assert weak.promoted is True and weak.promotion["decision"] == "promoted"
    # when a properly trained candidate comes
    better = _train(project)
    # then it goes live, with the paired figures
    assert better.promoted is True, better.promotion_note
    assert better.promotion["candidate_accuracy"] > better.promotion["active_accuracy"]
    # and a weak one after it is refused, and the better one stays live
    worse = _train(project, WEAK_ON_FIXTURE)
    assert worse.promoted is False and worse.promotion["decision"] == "refused"
    assert ModelVersion.objects.get(is_active=True).run_id == better.pk


def test_demo_promotes_a_better_model_and_refuses_a_worse_one_with_the_figures_shown(
    rm_settings, no_broker, client, reviewer_user
):
    # given the demo project, as `make run` creates it
    call_command("bootstrap_demo", stdout=StringIO())
    project = Project.objects.get(slug=DEMO_SLUG)
    # when a weak first version, then a properly trained one, then a weak one are trained
    first = _train(project, WEAK_ON_DEMO)
    better = _train(project)
    worse = _train(project, WEAK_ON_DEMO)
    # then the better retrain went live, on the same held-out pairs as the version it replaced
    assert first.promoted is True
    assert better.promoted is True, better.promotion_note
    assert better.promotion["candidate_accuracy"] > better.promotion["active_accuracy"]
    # and the worse one is refused, with the paired figures in the API under `promotion`
    assert worse.promoted is False, worse.promotion_note
    assert ModelVersion.objects.get(project=project, is_active=True).run_id == better.pk
    client.force_login(reviewer_user)
    body = client.get(f"/api/v1/runs/{worse.pk}").json()
    assert set(body["promotion"]) == set(FIGURES)
    promotion = body["promotion"]
    assert promotion["decision"] == "refused" and promotion["n"] == worse.n_test_pairs
    assert promotion["candidate_accuracy"] < promotion["active_accuracy"]
    assert promotion["difference"] == pytest.approx(promotion["candidate_accuracy"] - promotion["active_accuracy"])
    assert promotion["ci"][0] <= promotion["difference"] <= promotion["ci"][1]
    assert 0 < promotion["p_value"] <= 1 and "too few held-out pairs to tell" in promotion["reason"]
    # and on its page
    page = client.get(reverse("rewardmodel:run-detail", args=[worse.pk])).content.decode()
    assert 'data-testid="promotion"' in page and "Promotion: refused" in page
    assert f'data-figure="n">{promotion["n"]}<' in page
    assert f"{promotion['active_accuracy']:.3f}" in page
