"""A real browser labels three pairs by keyboard."""

import pytest

from labeling import services
from labeling.models import Pair, Vote
from tests.browser.conftest import log_in
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
