"""`manage.py fold_aggregates`: the beat task's fold, from the shell."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import AnnotatorStats
from labeling import services
from labeling.models import Vote


def test_fold_command_counts_the_waiting_votes(project, pairs, annotator_user):
    for _ in range(3):
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    out = StringIO()
    call_command("fold_aggregates", stdout=out)
    assert json.loads(out.getvalue()) == {"folded": 3, "projects": 1, "seconds": pytest.approx(0, abs=5)}
    assert not Vote.objects.filter(in_aggregates=False).exists()
    assert AnnotatorStats.objects.get(project=project, annotator__user=annotator_user).votes == 3


def test_negative_interval_is_refused(db):
    with pytest.raises(CommandError, match="--every"):
        call_command("fold_aggregates", "--every", "-1")
