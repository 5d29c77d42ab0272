"""The running dashboard aggregates: live votes and imports agree with a rebuild from the vote table."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from accounts import roles
from dashboard import aggregates
from dashboard.aggregates import on_version_activated
from dashboard.models import AnnotatorStats, ProjectStats, TallyBucket
from labeling import services
from labeling.models import Pair, Vote
from preferences.records import ImportedVote, PreferenceRecord
from rewardmodel.models import ModelVersion, TrainingRun
from tests.conftest import make_records, make_user

# The labeling loop's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


def snapshot(project) -> dict:
    buckets = {
        (b.split, b.n_a, b.n_b, b.n_tie): b.pairs for b in TallyBucket.objects.filter(project=project) if b.pairs
    }
    annotators = {
        s.annotator_id: {f.name: getattr(s, f.name) for f in AnnotatorStats._meta.fields if f.name not in ("id",)}
        for s in AnnotatorStats.objects.filter(project=project)
    }
    totals = (
        ProjectStats.objects.filter(project=project)
        .values("model_n", "model_agree", "model_n2", "model_agree2", "loo_n", "loo_agree")
        .first()
    )
    return {"buckets": buckets, "annotators": annotators, "totals": totals}


def buckets_from_pairs(project) -> dict:
    out: dict = {}
    for p in Pair.objects.filter(project=project, vote_count__gt=0):
        key = (p.split, p.votes_a, p.votes_b, p.votes_tie)
        out[key] = out.get(key, 0) + 1
    return out


def vote_all(project, users, rng, *, choices=("left", "right", "tie", "both_bad"), latency=5000):
    """Each user votes until nothing is left for them; choices drawn from `rng`."""
    cast = 0
    for _ in range(100):
        progressed = False
        for user in users:
            assignment = services.assignment_next(project=project, user=user)
            if assignment is None:
                continue
            services.vote_submit(
                assignment_id=assignment.pk,
                user=user,
                choice=rng.choice(choices),
                latency_ms=latency,
                now=assignment.served_at + timedelta(milliseconds=latency + 100),
            )
            cast += 1
            progressed = True
        if not progressed:
            return cast
    return cast


@pytest.fixture
def three_annotators(django_user_model, project, annotator_user, annotator_user2):
    carol = make_user(django_user_model, "carol", roles.ANNOTATOR)
    project.members.add(carol)
    return [annotator_user, annotator_user2, carol]


def test_folded_live_votes_equal_a_rebuild(project, pairs, three_annotators):
    # given three annotators voting on every pair with ties and both-bad
    cast = vote_all(project, three_annotators, random.Random(7))
    assert cast == 3 * len(pairs)
    # when their votes are folded in, in batches smaller than a pair's votes,
    # and compared with a rebuild
    assert aggregates.aggregates_fold(project_id=project.pk, batch=2) == cast
    live = snapshot(project)
    aggregates.aggregates_rebuild(project=project)
    rebuilt = snapshot(project)
    # then they are identical, and the histogram matches the pair counters
    assert live == rebuilt
    assert live["buckets"] == buckets_from_pairs(project)
    assert sum(s["votes"] for s in live["annotators"].values()) == Vote.objects.filter(project=project).count()


def test_earlier_voters_leave_one_out_agreement_follows_new_votes(project, three_annotators):
    # given a single pair, on which alice votes a
    alice, bob, carol = three_annotators
    services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)

    def vote(user, side):
        assignment = services.assignment_next(project=project, user=user)
        screen = "left" if assignment.left == side else "right"
        services.vote_submit(assignment_id=assignment.pk, user=user, choice=screen)
        return assignment.pair_id

    first = vote(alice, "a")

    def stats(user):
        aggregates.aggregates_fold(project_id=project.pk)
        return AnnotatorStats.objects.get(project=project, annotator__user=user)

    assert (stats(alice).loo_n, stats(alice).loo_agree) == (0, 0)
    # when bob votes a on the same pair (least-served first: the same pair)
    assert vote(bob, "a") == first
    # then alice and bob each agree with the other's majority
    assert (stats(alice).loo_n, stats(alice).loo_agree) == (1, 1)
    assert (stats(bob).loo_n, stats(bob).loo_agree) == (1, 1)
    # when carol votes b, alice's others are (a, b): no majority, so not counted
    assert vote(carol, "b") == first
    assert (stats(alice).loo_n, stats(alice).loo_agree) == (0, 0)
    assert (stats(carol).loo_n, stats(carol).loo_agree) == (1, 0)
    assert ProjectStats.objects.get(project=project).loo_n == 1


def test_position_length_and_latency_figures(project, pairs, annotator_user):
    # given an annotator who always clicks the left response after 1.5 s
    for _ in range(10):
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(
            assignment_id=assignment.pk,
            user=annotator_user,
            choice="left",
            latency_ms=1500,
            now=assignment.served_at + timedelta(seconds=2),
        )
    # when their votes are folded in and their stats read
    aggregates.aggregates_fold(project_id=project.pk)
    stats = AnnotatorStats.objects.get(project=project, annotator__user=annotator_user)
    # then every decisive vote is a left choice, the longer response (a) is
    # chosen when it was on the left, and the median is about 1.5 s
    left_a = Vote.objects.filter(project=project, shown_left="a").count()
    assert (stats.votes, stats.sided, stats.left_chosen) == (10, 10, 10)
    assert (stats.longer_decidable, stats.longer_chosen) == (10, left_a)
    assert abs(stats.median_latency_ms - 1500) / 1500 < 0.05
    # and they are flagged for position bias and speed
    assert set(stats.flags) == {aggregates.FLAG_POSITION, aggregates.FLAG_TOO_FAST}
    assert stats.flag_count == 2


def test_import_batches_with_new_voters_on_stored_pairs_match_a_rebuild(project):
    # given a first batch with two external annotators, ties included
    rng = random.Random(3)

    def records(voters):
        return [
            PreferenceRecord(
                prompt=f"prompt {i}",
                response_a=f"answer {i} " * (1 + i % 3),
                response_b=f"other {i}",
                votes=tuple(ImportedVote(v, rng.choice(("a", "b", "tie", "both_bad"))) for v in voters),
            )
            for i in range(40)
        ]

    services.pairs_import_batch(project=project, records=records(["x1", "x2"]), shuffle_sides=False)
    # when a second batch brings the same pairs with a third annotator
    counts = services.pairs_import_batch(project=project, records=records(["x1", "x3"]), shuffle_sides=False)
    assert counts.duplicates == 40 and counts.votes == 40
    # then the kept aggregates equal a rebuild and the pair counters
    live = snapshot(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)
    assert live["buckets"] == buckets_from_pairs(project)
    # and imported votes count for agreement but not for position or timing
    x3 = next(s for s in live["annotators"].values() if s["votes"] == 40 and s["loo_n"] >= 0 and s["sided"] == 0)
    assert x3["latency_n"] == 0 and x3["median_latency_ms"] is None


def _version(project, number: int) -> ModelVersion:
    run = TrainingRun.objects.create(project=project, trigger="cli", status="succeeded")
    return ModelVersion.objects.create(
        project=project, run=run, number=number, artifact_dir="/nowhere", metrics={"held_out_accuracy": 0.7}
    )


def test_model_agreement_follows_activation_and_new_votes(db, django_user_model):
    # given a project whose pairs are mostly held out, with imported votes
    from rewardmodel.models import PairPrediction

    project = services.project_create(slug="heldout", test_percent=90, overlap_target=4)
    records = [
        PreferenceRecord(
            prompt=f"q{i}",
            response_a=f"long answer {i} " * 3,
            response_b=f"short {i}",
            votes=(ImportedVote("x1", "a"), ImportedVote("x2", "a" if i % 3 else "b")),
        )
        for i in range(30)
    ]
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    test_pairs = list(Pair.objects.filter(project=project, split="test"))
    assert len(test_pairs) >= 10
    # and a version that picks a on even pair ids, b on odd ones
    version = _version(project, 1)
    PairPrediction.objects.bulk_create(
        [PairPrediction(version=version, pair=p, margin=1.0 if p.pk % 2 == 0 else -1.0) for p in test_pairs]
    )
    # when it becomes active
    on_version_activated(version=version)
    # then the project's model-vs-majority counts are those of the pairs
    expected_n = sum(1 for p in test_pairs if p.votes_a != p.votes_b)
    expected_agree = sum(1 for p in test_pairs if p.votes_a != p.votes_b and (p.votes_a > p.votes_b) == (p.pk % 2 == 0))
    stats = ProjectStats.objects.get(project=project)
    assert (stats.active_version_id, stats.model_n, stats.model_agree) == (version.pk, expected_n, expected_agree)
    assert stats.model_n2 == expected_n
    # when a live annotator votes on held-out pairs
    user = make_user(django_user_model, "dora", roles.ANNOTATOR)
    project.members.add(user)
    vote_all(project, [user], random.Random(1), choices=("left", "right"))
    # then, folded in, the live figures equal a rebuild under the same active version
    aggregates.aggregates_fold(project_id=project.pk)
    live = snapshot(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)
    dora = AnnotatorStats.objects.get(project=project, annotator__user=user)
    assert dora.model_n == Vote.objects.filter(annotator__user=user, pair__split="test").count()


# --------------------------------------------------------------------------- #
# Live votes wait outside the aggregates until they are folded in
# --------------------------------------------------------------------------- #
def test_a_live_vote_is_counted_once_when_folded(project, pairs, annotator_user):
    # given one live vote
    assignment = services.assignment_next(project=project, user=annotator_user)
    vote, _ = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    # then it is stored, counted on its pair for selection, and not in the aggregates yet
    assert Vote.objects.get(pk=vote.pk).in_aggregates is False
    assert Pair.objects.get(pk=assignment.pair_id).vote_count == 1
    assert snapshot(project)["buckets"] == {}
    # when it is folded in, twice
    assert aggregates.aggregates_fold(project_id=project.pk) == 1
    assert aggregates.aggregates_fold(project_id=project.pk) == 0
    # then it counts once, as a rebuild counts it
    assert Vote.objects.get(pk=vote.pk).in_aggregates is True
    live = snapshot(project)
    assert sum(live["buckets"].values()) == 1 and live["annotators"][vote.annotator_id]["votes"] == 1
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)


def test_an_import_onto_pairs_with_votes_waiting_then_a_fold_match_a_rebuild(project, three_annotators):
    # given live votes on every pair, not folded yet
    records = make_records(12)
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    vote_all(project, three_annotators[:2], random.Random(5))
    assert Vote.objects.filter(project=project, in_aggregates=False).count() == 24
    # when an import adds votes on the same pairs before the fold
    voted = [PreferenceRecord(r.prompt, r.response_a, r.response_b, (ImportedVote("bulk", "b"),)) for r in records]
    assert services.pairs_import_batch(project=project, records=voted, shuffle_sides=False).votes == 12
    aggregates.aggregates_fold(project_id=project.pk)
    # then every vote is counted once: the aggregates equal a rebuild and the pair counters
    live = snapshot(project)
    assert live["buckets"] == buckets_from_pairs(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)


def test_activation_with_votes_waiting_counts_them_once_after_the_fold(db, django_user_model):
    from rewardmodel.models import PairPrediction

    # given held-out pairs with imported votes and live votes not folded yet
    project = services.project_create(slug="waiting", test_percent=90, overlap_target=3)
    services.pairs_import_batch(project=project, records=make_records(20, votes=1), shuffle_sides=False)
    user = make_user(django_user_model, "erin", roles.ANNOTATOR)
    project.members.add(user)
    vote_all(project, [user], random.Random(2), choices=("left", "right"))
    waiting = Vote.objects.filter(project=project, in_aggregates=False).count()
    assert waiting > 0
    # when a version that picks a everywhere becomes active, and the waiting votes are folded after
    version = _version(project, 1)
    test_pairs = list(Pair.objects.filter(project=project, split="test"))
    PairPrediction.objects.bulk_create([PairPrediction(version=version, pair=p, margin=1.0) for p in test_pairs])
    on_version_activated(version=version)
    assert aggregates.aggregates_fold(project_id=project.pk) == waiting
    # then the model figures equal a rebuild under that version
    live = snapshot(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)
    erin = AnnotatorStats.objects.get(project=project, annotator__user=user)
    assert erin.model_n == Vote.objects.filter(annotator__user=user, pair__split="test").count() > 0


def test_a_rebuild_counts_the_votes_waiting_and_leaves_nothing_to_fold(project, pairs, annotator_user):
    for _ in range(4):
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="right")
    aggregates.aggregates_rebuild(project=project)
    assert not Vote.objects.filter(project=project, in_aggregates=False).exists()
    assert aggregates.aggregates_fold(project_id=project.pk) == 0
    assert sum(snapshot(project)["buckets"].values()) == 4


def test_the_beat_task_folds_every_project(db, project, pairs, annotator_user, django_user_model):
    # given waiting votes in two projects
    other = services.project_create(slug="other", name="Other")
    services.pairs_import_batch(project=other, records=make_records(3), shuffle_sides=False)
    other.members.add(annotator_user)
    for p in (project, project, other):
        assignment = services.assignment_next(project=p, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="tie")
    # when the task runs (in-process here; tests/rewardmodel/test_beat_schedule.py runs it from beat)
    from dashboard.tasks import aggregates_fold_task

    aggregates_fold_task()
    # then nothing waits and each project counts its own votes
    assert not Vote.objects.filter(in_aggregates=False).exists()
    assert sum(snapshot(project)["buckets"].values()) == 2
    assert sum(snapshot(other)["buckets"].values()) == 1


def test_an_idle_annotators_low_agreement_flag_follows_the_pool(project):
    # given "odd", who went against three agreeing others on 12 pairs, and is flagged for it
    services.pairs_import_batch(
        project=project,
        records=[
            PreferenceRecord(
                prompt=f"p{i}",
                response_a=f"a{i}",
                response_b=f"b{i}",
                votes=tuple(ImportedVote(name, "b" if name == "odd" else "a") for name in ("odd", "x", "y", "z")),
            )
            for i in range(12)
        ],
        shuffle_sides=False,
    )

    def odd():
        return AnnotatorStats.objects.get(project=project, annotator__external_id__endswith="odd")

    assert aggregates.FLAG_LOW_AGREEMENT in odd().flags
    # when later votes, on pairs odd never saw, leave everyone else agreeing as rarely
    # (on each pair, the lone b voter goes against the others' majority)
    services.pairs_import_batch(
        project=project,
        records=[
            PreferenceRecord(
                prompt=f"q{i}",
                response_a=f"c{i}",
                response_b=f"d{i}",
                votes=(ImportedVote("u", "a"), ImportedVote("v", "a"), ImportedVote("w", "b")),
            )
            for i in range(200)
        ],
        shuffle_sides=False,
    )
    # then odd is judged against the pool as it is now, though their own row did not change,
    # as a rebuild judges them
    assert aggregates.FLAG_LOW_AGREEMENT not in odd().flags
    live = snapshot(project)
    aggregates.aggregates_rebuild(project=project)
    assert live == snapshot(project)
