"""`manage.py rebuild_aggregates` repairs the dashboard tables from the vote table."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard import aggregates
from dashboard.models import AnnotatorStats, TallyBucket
from labeling import services


def test_rebuild_restores_aggregates_after_they_were_lost(project, pairs, annotator_user):
    # given votes, whose aggregates are then wiped
    for _ in range(3):
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    aggregates.aggregates_fold(project_id=project.pk)
    expected = sorted(TallyBucket.objects.filter(project=project).values_list("split", "n_a", "n_b", "n_tie", "pairs"))
    TallyBucket.objects.filter(project=project).delete()
    AnnotatorStats.objects.filter(project=project).delete()
    # when
    out = StringIO()
    call_command("rebuild_aggregates", "--project", project.slug, stdout=out)
    # then
    rebuilt = sorted(TallyBucket.objects.filter(project=project).values_list("split", "n_a", "n_b", "n_tie", "pairs"))
    assert rebuilt == expected and sum(row[-1] for row in rebuilt) == 3
    assert AnnotatorStats.objects.get(project=project).votes == 3
    assert '"project": "demo"' in out.getvalue()
    # and the annotators' reliability is refitted with it
    from dashboard.models import AnnotatorReliability, ReliabilityFit

    assert ReliabilityFit.objects.get(project=project).votes == 3
    assert AnnotatorReliability.objects.filter(project=project).count() == 1


def test_unknown_project_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("rebuild_aggregates", "--project", "nope")
