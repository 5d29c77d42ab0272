"""The SQL that counts votes into a pair (labeling/sql.py) agrees with the one label rule.

The vote statements keep each pair's counters (votes_a, votes_b, votes_tie)
in SQL; the training snapshot, the exports and the dashboard label pairs
from them through `preferences.labels`. On random vote sets, the counters
must be the Python tally of the stored votes, and the label read from them
the label of those votes.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import aggregates
from dashboard.models import TallyBucket
from labeling import services
from labeling.models import Pair, Vote
from preferences.labels import Tally
from preferences.records import PreferenceRecord
from rewardmodel.snapshot import training_snapshot_take
from tests.conftest import make_user

pytestmark = pytest.mark.both_databases

SCREEN_CHOICES = ("left", "right", "tie", "both_bad")
_slugs = itertools.count()


@pytest.fixture
def voters(db, django_user_model):
    return [make_user(django_user_model, f"voter{i}", "annotator") for i in range(6)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=st.lists(st.sampled_from(SCREEN_CHOICES), max_size=6))
def test_sql_counters_and_labels_follow_the_python_rule(voters, choices):
    # given a fresh pair, all of it held out (so the snapshot keeps it even when it has no winner)
    project = services.project_create(slug=f"rule-{next(_slugs)}", name="rule", overlap_target=6, test_percent=90)
    project.members.add(*voters)
    services.pairs_import_batch(
        project=project,
        shuffle_sides=False,
        records=[
            PreferenceRecord(prompt="Which is better?", response_a="a careful answer", response_b="a sloppy one"),
        ],
    )
    # when one voter after another votes through the live path (the labeling loop's SQL)
    for user, choice in zip(voters, choices):
        assignment = services.assignment_next(project=project, user=user)
        services.vote_submit(assignment_id=assignment.pk, user=user, choice=choice)
    # then the pair's SQL counters are the Python tally of its stored votes
    pair = Pair.objects.get(project=project)
    stored = list(Vote.objects.filter(pair=pair).values_list("choice", flat=True))
    tally = Tally.of(stored)
    assert (pair.votes_a, pair.votes_b, pair.votes_tie) == tally.as_tuple()
    assert pair.vote_count == len(choices) == tally.total
    # and the label the trainer reads from the counters is the rule's label of the votes
    snapshot = training_snapshot_take(project=project)
    winners = [p.winner for p in snapshot.test_pairs]
    assert winners == ([tally.winner] if stored else [])
    # and once folded, the dashboard files the pair under the same tally
    aggregates.aggregates_fold(project_id=project.pk)
    buckets = list(TallyBucket.objects.filter(project=project, pairs__gt=0).values_list("n_a", "n_b", "n_tie"))
    assert buckets == ([tally.as_tuple()] if stored else [])
