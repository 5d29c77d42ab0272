"""Gold pairs and repeat checks on the dashboard: out of agreement, into each annotator's row; the role rules."""

from __future__ import annotations

import random
import re

import pytest

from dashboard import aggregates, quality
from dashboard.models import AnnotatorReliability, TallyBucket
from dashboard.selectors import ANNOTATOR_CSV_HEADER
from labeling import services
from labeling.models import Pair
from tests.conftest import make_records, make_user

URL = "/api/v1/projects/{}/metrics"


def _screen(lease, pair_choice):
    return "left" if lease.left == pair_choice else "right"


@pytest.fixture
def voted(project, annotator_user, annotator_user2, monkeypatch):
    """Two annotators: alice answers every gold pair right, bob every one wrong (10 each, with no automatic
    pause: it needs 50 here), and both vote on 4 ordinary pairs; alice then answers one repeat check consistently."""
    monkeypatch.setattr(services, "_draw", random.Random(3))
    services.pairs_import_batch(project=project, records=make_records(40), shuffle_sides=False)
    services.pairs_import_batch(
        project=project, records=make_records(10, prefix="check"), shuffle_sides=False, gold_first=True
    )
    project.gold_percent, project.repeat_percent, project.gold_min_votes = 100, 0, 50
    project.save()
    for user, right in ((annotator_user, True), (annotator_user2, False)):
        for _ in range(10):
            lease = services.assignment_next(project=project, user=user)
            gold = Pair.objects.get(pk=lease.pair_id).gold
            services.vote_submit(
                assignment_id=lease.pk, user=user, choice=_screen(lease, gold if right else "ab".replace(gold, ""))
            )
    project.gold_percent = 0
    project.save()
    for user in (annotator_user, annotator_user2):
        for _ in range(4):
            lease = services.assignment_next(project=project, user=user)
            services.vote_submit(assignment_id=lease.pk, user=user, choice="left")
    # alice: 20 more votes after her first ordinary one, for a repeat check (gold pairs are never repeated)
    for _ in range(17):
        lease = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="left")
    project.repeat_percent = 100
    project.save()
    lease = services.assignment_next(project=project, user=annotator_user)
    assert lease.repeat
    first = lease.pair.votes.get(annotator=annotator_user.annotator)
    services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice=_screen(lease, first.choice))
    return project


def test_gold_votes_stay_out_of_agreement_and_match_a_rebuild(voted):
    aggregates.aggregates_fold(project_id=voted.pk)
    # the tally histogram counts ordinary pairs only
    gold_ids = set(Pair.objects.filter(project=voted).exclude(gold="").values_list("pk", flat=True))
    counted_pairs = sum(TallyBucket.objects.filter(project=voted).values_list("pairs", flat=True))
    voted_ordinary = Pair.objects.filter(project=voted, gold="", vote_count__gt=0).count()
    assert gold_ids and counted_pairs == voted_ordinary
    # and the running aggregates are what a rebuild writes
    assert aggregates.aggregates_check(project=voted) == {}


def test_metrics_api_gives_each_annotator_the_quality_keys(client, voted, reviewer_user, annotator_user):
    client.force_login(reviewer_user)
    body = client.get(URL.format(voted.slug)).json()
    rows = {r["annotator"]: r for r in body["annotators"]["rows"]}
    for r in rows.values():
        assert {"gold_accuracy", "self_consistency", "reliability", "paused"} <= set(r)
    alice, bob = rows["alice"], rows["bob"]
    assert alice["gold_accuracy"]["value"] == 1.0 and alice["gold_accuracy"]["n"] == 10
    assert bob["gold_accuracy"]["value"] == 0.0 and bob["gold_accuracy"]["ci"][1] < 0.5
    assert alice["self_consistency"] == {"value": 1.0, "ci": pytest.approx([0.2065, 1.0], abs=1e-3), "n": 1}
    assert bob["self_consistency"]["value"] is None
    assert alice["reliability"] is None  # not fitted yet
    assert alice["paused"] is False and bob["paused"] is False  # 10 gold votes: under the 50 a pause needs here
    # votes on gold pairs count for the annotator's own figures
    assert alice["votes"] == 10 + 4 + 17


def test_paused_annotator_is_flagged_on_the_dashboard_and_in_the_csv(client, voted, reviewer_user, annotator_user2):
    voted.gold_min_votes = 10
    voted.save()
    assert services.annotator_gold_check(project_id=voted.pk, annotator_id=annotator_user2.annotator.pk)
    client.force_login(reviewer_user)
    body = client.get(URL.format(voted.slug)).json()
    bob = next(r for r in body["annotators"]["rows"] if r["annotator"] == "bob")
    assert bob["paused"] is True and "paused" in bob["flags"] and "0 of 10" in bob["pause_reason"]
    assert body["annotators"]["paused"] == 1
    page = client.get(f"/p/{voted.slug}/dashboard/").content.decode()
    assert "Gold accuracy" in page and "Self-consistency" in page and "Reliability" in page
    assert '<span class="error" title="Automatic: 0 of 10' in page and "paused (gold accuracy)" in page
    csv = b"".join(client.get(f"/p/{voted.slug}/dashboard/annotators.csv").streaming_content).decode()
    header, *lines = csv.strip().splitlines()
    assert header.split(",") == ANNOTATOR_CSV_HEADER
    bob_line = next(line for line in lines if line.startswith("bob,"))
    assert "True" in bob_line and "paused" in bob_line


def test_reliability_is_fitted_off_request_and_flags_the_unreliable(client, voted, reviewer_user):
    # given a project with new votes: a refit is due
    assert quality.reliability_refit_due(project=voted)
    # when the beat task runs
    done = quality.reliability_refit_all()
    # then each annotator has a cached reliability, and no refit is due until a vote lands
    assert voted.slug in done and not quality.reliability_refit_due(project=voted)
    assert AnnotatorReliability.objects.filter(project=voted).count() == 2
    client.force_login(reviewer_user)
    rows = {r["annotator"]: r for r in client.get(URL.format(voted.slug)).json()["annotators"]["rows"]}
    assert 0.0 <= rows["bob"]["reliability"] <= 1.0 and 0.0 <= rows["alice"]["reliability"] <= 1.0
    assert rows["alice"]["reliability"] > rows["bob"]["reliability"]
    # the red flag is the one rule's (preferences.label_models.reliability_flagged)
    from preferences.label_models import reliability_flagged

    for r in rows.values():
        flagged = reliability_flagged(reliability=r["reliability"], decisive_votes=r["reliability_votes"])
        assert ("unreliable" in r["flags"]) == flagged
    # and with enough decisive votes behind a low figure, the row is flagged
    AnnotatorReliability.objects.filter(project=voted, annotator__user__username="bob").update(
        reliability=0.3, decisive_votes=100
    )
    rows = {r["annotator"]: r for r in client.get(URL.format(voted.slug)).json()["annotators"]["rows"]}
    assert "unreliable" in rows["bob"]["flags"] and "unreliable" not in rows["alice"]["flags"]
    # and a vote change makes a refit due again
    from labeling.models import Vote

    vote = Vote.objects.filter(project=voted, annotator__user__username="alice").order_by("-id").first()
    services.vote_change(vote_id=vote.pk, user=vote.annotator.user, choice="tie")
    assert quality.reliability_refit_due(project=voted)


def test_an_annotator_sees_only_their_own_gold_accuracy_and_never_an_answer(client, voted, annotator_user):
    from datetime import timedelta

    from django.utils import timezone

    from labeling.models import Vote

    # given gold votes from before today
    Vote.objects.filter(project=voted).update(created_at=timezone.now() - timedelta(days=1))
    aggregates.aggregates_fold(project_id=voted.pk)
    client.force_login(annotator_user)
    # the labeling page shows their own gold accuracy, nobody else's
    page = client.get(f"/p/{voted.slug}/label/").content.decode()
    assert 'data-testid="my-gold-accuracy"' in page and "100% of 10 right" in page
    assert not re.search(r"\bbob\b", page)  # a word: a CSRF token may hold the letters
    # the dashboard and the metrics API are not theirs
    assert client.get(f"/p/{voted.slug}/dashboard/").status_code == 403
    assert client.get(URL.format(voted.slug)).status_code == 403
    # their history shows their gold votes like any vote, with no answer
    history = client.get(f"/p/{voted.slug}/history/").content.decode()
    assert not re.search(r"\bgold\b", history, re.I) and "check" in history  # the pairs are there, as pairs


def test_todays_gold_votes_are_not_in_the_annotators_own_figure(client, voted, annotator_user):
    aggregates.aggregates_fold(project_id=voted.pk)
    client.force_login(annotator_user)
    page = client.get(f"/p/{voted.slug}/label/").content.decode()
    assert 'data-testid="my-gold-accuracy"' not in page


def test_project_rates_are_set_in_the_form_and_left_as_they_are_when_left_out(client, project, admin_user):
    client.force_login(admin_user)
    form = {"name": "Demo", "overlap_target": "3", "test_percent": "20"}
    form |= {"policy-min_new_votes": "50", "policy-promotion_delta": "0.01", "policy-label_model": "majority"}
    response = client.post(f"/p/{project.slug}/settings/", form | {"gold_percent": "12", "gold_pause_below": "0.7"})
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.gold_percent, project.gold_pause_below, project.repeat_percent) == (12, 0.7, 3)
    client.post(f"/p/{project.slug}/settings/", form)
    project.refresh_from_db()
    assert project.gold_percent == 12
    bad = client.post(f"/p/{project.slug}/settings/", form | {"gold_pause_below": "1.5"})
    assert bad.status_code == 400


def test_api_creates_a_project_with_quality_settings(client, admin_user, django_user_model):
    client.force_login(admin_user)
    body = {"slug": "q", "name": "Q", "gold_percent": 10, "repeat_percent": 0, "gold_min_votes": 20}
    assert client.post("/api/v1/projects", body, content_type="application/json").status_code == 201
    from labeling.models import Project

    p = Project.objects.get(slug="q")
    assert (p.gold_percent, p.repeat_percent, p.gold_min_votes, p.gold_pause_below) == (10, 0, 20, 0.6)
    make_user  # noqa: B018
