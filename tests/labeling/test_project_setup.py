"""Project setup in the app: the service rules, and the create, settings and members pages."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.models import Project
from lib.errors import Conflict, InvalidInput
from rewardmodel.models import RetrainPolicy
from tests.conftest import make_records, make_user

FORM = {
    "name": "Helpful",
    "instructions": "Pick the **more helpful** answer.",
    "overlap_target": "4",
    "test_percent": "25",
    "allow_tie": "on",
    "ask_strength": "on",
    "policy-enabled": "on",
    "policy-min_new_votes": "30",
    "policy-max_interval_hours": "",
    "policy-promotion_delta": "0.02",
    "policy-label_model": "majority",
}


# --------------------------------------------------------------------------- #
# Services
# --------------------------------------------------------------------------- #
def test_held_out_share_is_fixed_once_the_project_has_pairs(project):
    # given a project without pairs: the share may change
    services.project_update(project=project, test_percent=30)
    assert Project.objects.get(pk=project.pk).test_percent == 30
    # when it has pairs
    services.pairs_import_batch(project=project, records=make_records(3), shuffle_sides=False)
    # then changing the share is refused, saying why, and nothing else in the call is written
    with pytest.raises(InvalidInput, match="held-out share is fixed once a project has pairs .this one has 3."):
        services.project_update(project=project, test_percent=10, name="Renamed")
    stored = Project.objects.get(pk=project.pk)
    assert (stored.test_percent, stored.name) == (30, "Demo")
    # and the same value, or other settings, still go through
    services.project_update(project=project, test_percent=30, name="Renamed", overlap_target=5)
    stored = Project.objects.get(pk=project.pk)
    assert (stored.name, stored.overlap_target) == ("Renamed", 5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"overlap_target": 0}, "Votes per pair|overlap target"),
        ({"test_percent": 91}, "test percent"),
        ({"lease_seconds": 1}, "lease seconds"),
        ({"name": ""}, "name"),
        ({"slug": "new"}, "Unknown project field"),
    ],
)
def test_bad_settings_are_refused_and_write_nothing(project, changes, message):
    with pytest.raises(InvalidInput, match=message):
        services.project_update(project=project, **changes)
    assert Project.objects.get(pk=project.pk).overlap_target == 3


def test_project_create_refuses_a_taken_slug_and_bad_values(db):
    services.project_create(slug="one")
    with pytest.raises(Conflict):
        services.project_create(slug="one")
    with pytest.raises(InvalidInput):
        services.project_create(slug="two", overlap_target=99)
    assert list(Project.objects.values_list("slug", flat=True)) == ["one"]


# --------------------------------------------------------------------------- #
# Pages
# --------------------------------------------------------------------------- #
def test_admin_creates_a_project_with_its_retrain_policy(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/projects/new").status_code == 200
    # when the admin submits the form
    response = client.post("/projects/new", {**FORM, "slug": "helpful"})
    # then the project and its policy are stored, and the next step is its settings page
    assert response.status_code == 302 and response["Location"] == "/p/helpful/settings/"
    project = Project.objects.get(slug="helpful")
    assert (project.overlap_target, project.test_percent, project.ask_strength, project.allow_both_bad) == (
        4,
        25,
        True,
        False,
    )
    policy = RetrainPolicy.objects.get(project=project)
    assert (policy.enabled, policy.min_new_votes, policy.promotion_delta) == (True, 30, 0.02)
    page = client.get(response["Location"]).content.decode()
    assert "Next: upload its pairs and add members" in page
    assert 'data-testid="upload-form"' in page


def test_a_bad_form_writes_nothing_and_says_why(client, admin_user):
    client.force_login(admin_user)
    services.project_create(slug="taken")
    taken = client.post("/projects/new", {**FORM, "slug": "taken"})
    assert taken.status_code == 400 and "exists already" in taken.content.decode()
    bad_policy = client.post("/projects/new", {**FORM, "slug": "fresh", "policy-min_new_votes": "0"})
    assert bad_policy.status_code == 400
    assert not Project.objects.filter(slug="fresh").exists()
    assert not RetrainPolicy.objects.exists()


def test_settings_page_edits_and_shows_the_share_as_fixed(client, admin_user, project, pairs):
    client.force_login(admin_user)
    page = client.get(f"/p/{project.slug}/settings/").content.decode()
    assert 'data-testid="held-out-share"' in page and "Fixed" in page
    # when the admin saves new settings, with a held-out share posted anyway
    response = client.post(f"/p/{project.slug}/settings/", {**FORM, "name": "Renamed", "test_percent": "50"})
    # then the settings change and the share does not
    assert response.status_code == 302
    stored = Project.objects.get(pk=project.pk)
    assert (stored.name, stored.overlap_target, stored.test_percent) == ("Renamed", 4, 20)
    assert RetrainPolicy.objects.get(project=project).min_new_votes == 30


def test_members_page_adds_a_pasted_list_and_removes(client, admin_user, project, django_user_model):
    client.force_login(admin_user)
    make_user(django_user_model, "carol", "annotator", email="carol@example.org")
    make_user(django_user_model, "dave", None)
    # when the admin pastes names, one per line and with commas
    response = client.post(f"/p/{project.slug}/members/", {"names": "carol@example.org,\n dave ; alice"})
    # then they are members, and the page says who cannot label yet
    assert response.status_code == 302
    assert set(project.members.values_list("username", flat=True)) == {"alice", "bob", "carol", "dave"}
    page = client.get(response["Location"]).content.decode()
    assert "dave cannot label yet" in page and "Already members: alice" in page
    # and an unknown name adds nobody and keeps the text for fixing
    refused = client.post(f"/p/{project.slug}/members/", {"names": "ghost\nerin"})
    assert refused.status_code == 400 and "no active user named ghost, erin" in refused.content.decode()
    assert "ghost\nerin</textarea>" in refused.content.decode()
    # and remove takes one off
    dave = django_user_model.objects.get(username="dave")
    assert client.post(f"/p/{project.slug}/members/{dave.pk}/remove").status_code == 302
    assert not project.members.filter(pk=dave.pk).exists()


def test_members_page_shows_each_members_progress(client, admin_user, project, pairs, annotator_user):
    for _ in range(2):
        assignment = services.assignment_next(project=project, user=annotator_user)
        services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    client.force_login(admin_user)
    html = client.get(f"/p/{project.slug}/members/").content.decode()
    row = html[html.index('data-member="alice"') : html.index('data-member="bob"')]
    assert '<td class="num">2</td>' in row


def test_markdown_preview_is_sanitised(client, admin_user, annotator_user):
    client.force_login(admin_user)
    html = client.post("/projects/markdown-preview", {"instructions": "**Be** kind <script>alert(1)</script>"})
    assert "<strong>Be</strong>" in html.content.decode() and "<script>" not in html.content.decode()
    client.force_login(annotator_user)
    assert client.post("/projects/markdown-preview", {"instructions": "x"}).status_code == 403


def test_annotators_see_no_project_wide_settings_on_the_project_list(client, project, annotator_user, admin_user):
    client.force_login(annotator_user)
    html = client.get("/").content.decode()
    assert "Votes per pair" not in html and "Overlap" not in html and "New project" not in html
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    assert "Votes per pair (K)" in html and 'data-testid="new-project"' in html
    assert f'href="/p/{project.slug}/settings/"' in html and f'href="/p/{project.slug}/members/"' in html
