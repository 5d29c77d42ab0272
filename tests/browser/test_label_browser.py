"""A real browser labels by keyboard: votes, strength and reasons, undo, changes from the history."""

import pytest

from labeling import services
from labeling.models import Pair, Vote
from preferences.records import PreferenceRecord
from tests.browser.conftest import Problems, log_in
from tests.conftest import make_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_annotator_labels_three_pairs_by_keyboard(live_server, page, annotator_user, project):
    # given a project with pairs, and an annotator logged in through the form
    services.pairs_import_batch(project=project, records=make_records(6), shuffle_sides=False)
    log_in(page, live_server, "alice", "pw-alice")
    page.goto(f"{live_server.url}/p/{project.slug}/label/")
    csp_violations = []
    page.on("console", lambda msg: csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None)

    expected = {}  # pair id -> the response text the annotator picked
    for key, side in (("1", "left"), ("ArrowRight", "right"), ("2", "right")):
        form = page.locator("#pair-form")
        assignment_id = form.get_attribute("data-assignment")
        picked_text = page.locator(f'.response[data-side="{side}"] .md').inner_text().strip()
        pair = Pair.objects.get(assignments__pk=assignment_id)
        expected[pair.pk] = picked_text
        # when the annotator presses the key
        page.keyboard.press(key)
        # then the next card replaces this one (HTMX swap)
        page.wait_for_function(
            "id => { const f = document.getElementById('pair-form'); return !f || f.dataset.assignment !== id; }",
            arg=assignment_id,
        )

    # then three votes are stored, each naming the response that was picked,
    # whichever side it was shown on
    votes = list(Vote.objects.select_related("pair"))
    assert len(votes) == 3
    for vote in votes:
        chosen_text = vote.pair.response_a if vote.choice == "a" else vote.pair.response_b
        assert chosen_text == expected[vote.pair_id]
        assert vote.latency_ms is not None
    assert "3</strong> labeled by you" in page.content()
    assert csp_violations == []


SWAPPED = "id => { const f = document.getElementById('pair-form'); return !f || f.dataset.assignment !== id; }"


def _current(page) -> str:
    return page.locator("#pair-form").get_attribute("data-assignment")


def _press_and_wait(page, key: str) -> None:
    """Press a vote key and wait for HTMX to swap the next card in."""
    before = _current(page)
    page.keyboard.press(key)
    page.wait_for_function(SWAPPED, arg=before)


def test_annotator_labels_by_keyboard_then_undoes_one_and_changes_another(live_server, page, annotator_user):
    # given a project that asks for strength and a reason, and an annotator on its labeling page
    from labeling.models import VoteChange

    project = services.project_create(slug="keys", name="Keys", ask_strength=True, ask_rationale=True)
    project.members.add(annotator_user)
    services.pairs_import_batch(project=project, records=make_records(8), shuffle_sides=False)
    problems = Problems().watch(page)
    log_in(page, live_server, "alice", "pw-alice")
    page.goto(f"{live_server.url}/p/{project.slug}/label/")
    assert "strength z slightly, x better, c much better" in page.inner_text("[data-testid=keys]")

    # when she labels five pairs by keyboard: a strength key, r, a reason with digits in it, Escape, a vote key
    plan = [
        ("x", "1", "left"),
        ("z", "ArrowRight", "right"),
        ("c", "3", "tie"),
        ("c", "2", "right"),
        (None, "1", "left"),
    ]
    cast = []
    for i, (strength_key, vote_key, screen) in enumerate(plan):
        assignment_id = _current(page)
        if strength_key:
            page.keyboard.press(strength_key)
        page.keyboard.press("r")
        page.keyboard.type(f"reason {i}: 1 2 3 4 s u")  # vote keys typed in the box vote nothing
        assert _current(page) == assignment_id
        page.keyboard.press("Escape")
        assert page.evaluate("document.activeElement === document.body")
        if i == 4:
            # a focused strength radio does not swallow the arrows: they still vote
            page.click("input[data-key=z]")
            _press_and_wait(page, "ArrowLeft")
        else:
            _press_and_wait(page, vote_key)
        cast.append((int(assignment_id), screen, f"reason {i}: 1 2 3 4 s u"))

    # then five votes are stored with their strength (none for the tie) and reason
    votes = {v.assignment_id: v for v in Vote.objects.filter(annotator__user=annotator_user)}
    assert len(votes) == 5
    strengths = {"x": 2, "z": 1, "c": 3}
    for (assignment_id, screen, reason), (strength_key, _, _) in zip(cast, plan):
        vote = votes[assignment_id]
        expected = vote.shown_left if screen == "left" else ("a" if vote.shown_left == "b" else "b")
        assert vote.choice == (expected if screen in ("left", "right") else screen)
        assert vote.rationale == reason
        want = None if screen == "tie" else strengths.get(strength_key or "z")
        assert vote.strength == want, (screen, vote.strength)
    assert "5</strong> labeled by you" in page.content()

    # when she skips the next pair, then presses u
    _press_and_wait(page, "s")
    page.keyboard.press("u")
    page.wait_for_selector("[data-testid=undone]")
    # then her last vote's pair is back, with the earlier choice shown, and the vote is gone
    last_id, _, _ = cast[-1]
    assert int(_current(page)) == last_id
    assert "You had picked Left (slightly)" in page.inner_text("[data-testid=undone]")
    assert page.locator(".response.was-chosen[data-side=left]").count() == 1
    assert not Vote.objects.filter(assignment_id=last_id).exists()
    # and voting again stores the new choice
    _press_and_wait(page, "2")
    assert Vote.objects.get(assignment_id=last_id).choice != votes[last_id].choice

    # when she opens her votes (h) and changes the first one to a tie
    page.keyboard.press("h")
    page.wait_for_url("**/history/")
    first = votes[cast[0][0]]
    page.click(f'li[data-vote="{first.pk}"] [data-testid=change-tie]')
    page.wait_for_selector(".messages li")
    # then it is stored, shown, and both changes are on record
    assert Vote.objects.get(pk=first.pk).choice == "tie"
    assert page.locator(f'li[data-vote="{first.pk}"]').get_attribute("data-choice") == "tie"
    assert sorted(VoteChange.objects.values_list("action", flat=True)) == ["change", "undo"]
    # and nothing failed on the way: no console error (the skip's HTMX included), no failed request
    assert problems.list == []


def test_the_vote_bar_stays_in_view_on_a_long_conversation(live_server, page, annotator_user, project):
    # given a five-turn conversation with long turns
    long = " ".join(["This is a long turn that goes on and on about the topic."] * 12)
    turns = [f"Human: {long}", f"Assistant: {long}", f"Human: {long}", f"Assistant: {long}", "Human: So which is it?"]
    record = PreferenceRecord(prompt="\n\n".join(turns), response_a=long, response_b="Short answer.", votes=())
    services.pairs_import_batch(project=project, records=[record], shuffle_sides=False)
    page.set_viewport_size({"width": 1280, "height": 720})
    log_in(page, live_server, "alice", "pw-alice")
    # when she opens the labeling page, without scrolling
    page.goto(f"{live_server.url}/p/{project.slug}/label/")
    # then the page is taller than the window, and every vote button is inside it and on top
    assert page.evaluate("document.documentElement.scrollHeight") > 720
    for key in ("1", "2", "3", "4", "s"):
        inside = page.evaluate(
            """key => {
                const b = document.querySelector(`#pair-form button[data-key="${key}"]`);
                const r = b.getBoundingClientRect();
                const onTop = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                return r.top >= 0 && r.bottom <= window.innerHeight && (onTop === b || b.contains(onTop));
            }""",
            key,
        )
        assert inside, key
