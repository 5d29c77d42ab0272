import pytest

from labeling import services
from labeling.models import Assignment, Vote


def test_next_then_vote_stores_pair_terms(project, pairs, annotator_user):
    # given
    assignment = services.assignment_next(project=project, user=annotator_user)
    # when
    vote, created = services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    # then
    assert created
    assert vote.choice == assignment.left
    assert vote.shown_left == assignment.left
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.VOTED
    assert Vote.objects.count() == 1
