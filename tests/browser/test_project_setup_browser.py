"""An admin sets up a project in the app, in a real browser: settings, a file of pairs, two members."""

from __future__ import annotations

import json

import pytest

from labeling.models import Pair, Project
from tests.browser.conftest import Problems, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_a_project_uploads_pairs_and_adds_two_members(
    live_server, page, admin_user, annotator_user, annotator_user2, tmp_path
):
    # given an admin on the project list, and a file of six pairs
    rows = [{"prompt": f"Question {i}?", "response_a": f"A good answer {i}.", "response_b": "meh"} for i in range(6)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = Problems().watch(page)
    log_in(page, live_server, "adam", "pw-adam")

    # when they create a project from the form, its instructions previewed as annotators will see them
    page.click("[data-testid=new-project]")
    page.fill("input[name=slug]", "kindness")
    page.fill("input[name=name]", "Kindness")
    page.fill("textarea[name=instructions]", "Pick the **kinder** answer.")
    page.wait_for_selector("#instructions-preview strong:text('kinder')")
    page.fill("input[name=overlap_target]", "2")
    page.check("input[name=ask_strength]")
    page.click("[data-testid=create-project]")
    page.wait_for_url("**/p/kindness/settings/")
    project = Project.objects.get(slug="kindness")
    assert (project.overlap_target, project.ask_strength, project.instructions) == (
        2,
        True,
        "Pick the **kinder** answer.",
    )

    # and upload the file from the same page
    page.set_input_files("[data-testid=upload-form] input[type=file]", str(data))
    page.click("[data-testid=upload]")
    page.wait_for_selector("#import-progress[data-status=succeeded]")
    assert page.inner_text("[data-count=created]") == "6"
    assert Pair.objects.filter(project=project).count() == 6

    # and go back to the project's setup to add two members, pasted on two lines
    page.click("[data-testid=back-to-setup]")
    page.wait_for_url("**/p/kindness/settings/#members")
    assert page.is_visible("[data-testid=held-out-share]")  # fixed now that the project has pairs
    page.fill("[data-testid=member-names]", "alice\nbob")
    page.click("[data-testid=add-members]")
    page.wait_for_url("**/p/kindness/members/")

    # then both are members, listed with their progress
    assert set(project.members.values_list("username", flat=True)) == {"alice", "bob"}
    assert page.locator("[data-testid=members] tbody tr").count() == 2
    assert "Added alice, bob." in page.inner_text(".messages")
    # and the message goes when its moment has passed (a success fades; an error would stay until dismissed)
    page.wait_for_selector(".messages", state="detached", timeout=10_000)
    # and nothing failed on the way
    assert problems.list == []


def test_a_confirmation_comes_before_an_action_that_cannot_be_taken_back(live_server, page, admin_user, project):
    # given an admin on the members page of a project with alice and bob
    log_in(page, live_server, "adam", "pw-adam")
    page.goto(f"{live_server.url}/p/{project.slug}/members/")
    remove_alice = "tr[data-member=alice] button"
    # when they click Remove and answer Cancel, then nothing happens
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click(remove_alice)
    assert questions == ["Remove alice from Demo? Their votes stay."]
    assert project.members.filter(username="alice").exists()
    # when they click it again and answer OK, then alice is removed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(remove_alice)
    page.wait_for_selector(".messages li.success")
    assert not project.members.filter(username="alice").exists()
