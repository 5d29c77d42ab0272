"""What keeps the data sound: a fixed test split, votes that cannot be deleted by accident, archiving."""

from __future__ import annotations

import pytest
from django.db.models import RestrictedError
from django.urls import reverse

from labeling import services
from labeling.models import Pair, Project, Vote
from tests.conftest import make_records


def _vote(project, user):
    assignment = services.assignment_next(project=project, user=user)
    services.vote_submit(assignment_id=assignment.pk, user=user, choice="left")
    return assignment.pair


def test_the_admin_shows_test_percent_read_only_once_a_project_has_pairs(client, admin_user, db):
    # the rule at the service and form level lives with the project-setup work (issue 18)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    empty = services.project_create(slug="empty", test_percent=20)
    url = reverse("admin:labeling_project_change", args=[empty.pk])
    assert 'name="test_percent"' in client.get(url).content.decode()
    # given a project with pairs
    full = services.project_create(slug="full", test_percent=20)
    services.pairs_import_batch(project=full, records=make_records(3), shuffle_sides=False)
    url = reverse("admin:labeling_project_change", args=[full.pk])
    # then the field is shown, not editable, and a forged post cannot change it
    page = client.get(url).content.decode()
    assert 'name="test_percent"' not in page and "field-test_percent" in page
    client.post(url, {"slug": "full", "name": "full", "overlap_target": 3, "lease_seconds": 600, "test_percent": 80})
    assert Project.objects.get(pk=full.pk).test_percent == 20


def test_a_pair_with_votes_cannot_be_deleted_but_its_project_can(project, pairs, annotator_user):
    # given a pair with a vote
    voted = _vote(project, annotator_user)
    # when it is deleted, then it is refused and the vote is kept
    with pytest.raises(RestrictedError):
        Pair.objects.get(pk=voted.pk).delete()
    assert Vote.objects.filter(pair=voted).count() == 1
    # and a pair without votes can go
    unvoted = Pair.objects.filter(project=project, vote_count=0).first()
    unvoted.delete()
    # and deleting the whole project takes its pairs and votes with it
    project.delete()
    assert not Vote.objects.exists() and not Pair.objects.exists()


def test_the_admin_refuses_to_delete_a_voted_pair_and_offers_to_archive_it(
    client, admin_user, project, pairs, annotator_user
):
    admin_user.is_superuser = True
    admin_user.save()
    voted = _vote(project, annotator_user)
    client.force_login(admin_user)
    page = client.get(reverse("admin:labeling_pair_delete", args=[voted.pk]))
    assert page.status_code == 403
    response = client.post(
        reverse("admin:labeling_pair_changelist"),
        {"action": "delete_selected", "_selected_action": [voted.pk], "post": "yes"},
    )
    assert Pair.objects.filter(pk=voted.pk).exists(), response.status_code
    client.post(reverse("admin:labeling_pair_changelist"), {"action": "archive", "_selected_action": [voted.pk]})
    assert Pair.objects.get(pk=voted.pk).archived


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_an_archived_pair_is_no_longer_served_nor_trained_on(annotator_user, settings):
    from rewardmodel.snapshot import training_snapshot_take

    # given two pairs, one archived after it got a vote
    project = services.project_create(slug="arch", overlap_target=3, test_percent=0)
    project.members.add(annotator_user)
    services.pairs_import_batch(project=project, records=make_records(2, votes=1), shuffle_sides=False)
    first, second = Pair.objects.filter(project=project).order_by("rank")
    services.pair_archive(pair=first)
    # then only the other is served, and only the other trains; the archived one keeps its vote
    assert services.assignment_next(project=project, user=annotator_user).pair_id == second.pk
    snapshot = training_snapshot_take(project=project)
    assert [p.pair_id for p in snapshot.train_pairs] == [str(second.pk)]
    assert Vote.objects.filter(pair=first).count() == 1
