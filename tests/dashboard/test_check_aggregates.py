"""`manage.py check_aggregates`: the running aggregates against a rebuild, read-only."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import AnnotatorStats, TallyBucket
from labeling import services


def _vote(project, user, choice):
    assignment = services.assignment_next(project=project, user=user)
    services.vote_submit(assignment_id=assignment.pk, user=user, choice=choice, latency_ms=3000)


def test_consistent_aggregates_pass_and_nothing_is_written(project, pairs, annotator_user, annotator_user2):
    # given live votes (waiting to be folded) from two annotators
    for user, choice in ((annotator_user, "left"), (annotator_user2, "right"), (annotator_user, "tie")):
        _vote(project, user, choice)
    # when the check runs
    out = StringIO()
    call_command("check_aggregates", "--project", project.slug, stdout=out)
    # then it folded them, found the aggregates equal to a rebuild, and says so
    assert '"consistent": true' in out.getvalue()
    assert AnnotatorStats.objects.filter(project=project).count() == 2


def test_a_damaged_aggregate_is_reported_and_left_for_rebuild(project, pairs, annotator_user):
    _vote(project, annotator_user, "left")
    call_command("fold_aggregates", stdout=StringIO())
    # given a bucket count that no longer matches the votes
    TallyBucket.objects.filter(project=project, pairs__gt=0).update(pairs=5)
    # when checked, then the command fails naming the table, and changes nothing
    out = StringIO()
    with pytest.raises(CommandError, match="rebuild_aggregates"):
        call_command("check_aggregates", "--all", stdout=out)
    assert '"differs": ["tally_buckets"]' in out.getvalue()
    assert TallyBucket.objects.get(project=project, pairs__gt=0).pairs == 5
    # and after a rebuild the check passes
    call_command("rebuild_aggregates", "--project", project.slug, stdout=StringIO())
    call_command("check_aggregates", "--project", project.slug, stdout=StringIO())
