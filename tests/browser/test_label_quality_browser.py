"""A real browser: an annotator who answers every gold pair wrong is paused, and told so."""

import pytest

from labeling import selectors, services
from labeling.models import Assignment
from tests.browser.conftest import log_in
from tests.conftest import make_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SWAPPED = "id => { const f = document.getElementById('pair-form'); return !f || f.dataset.assignment !== id; }"


def test_annotator_answering_every_gold_pair_wrong_is_paused_and_told(live_server, page, annotator_user, project):
    # given a project whose every pair served is a gold pair while any are left, and ordinary pairs too
    project.gold_percent, project.repeat_percent = 100, 0
    project.save()
    services.pairs_import_batch(
        project=project, records=make_records(12, prefix="check"), shuffle_sides=True, gold_first=True
    )
    services.pairs_import_batch(project=project, records=make_records(5), shuffle_sides=False)
    log_in(page, live_server, "alice", "pw-alice")
    page.goto(f"{live_server.url}/p/{project.slug}/label/")

    # when she picks the wrong response of each of ten gold pairs, by keyboard
    for _ in range(10):
        form = page.locator("#pair-form")
        assignment_id = form.get_attribute("data-assignment")
        lease = Assignment.objects.select_related("pair").get(pk=assignment_id)
        assert lease.pair.gold in ("a", "b")
        page.keyboard.press("2" if lease.left == lease.pair.gold else "1")
        page.wait_for_function(SWAPPED, arg=assignment_id)

    # then the card says she is paused, why, and whom to contact, and offers no pair
    notice = page.get_by_test_id("paused")
    notice.wait_for()
    text = notice.inner_text()
    assert "You are paused on this project" in text and "Contact" in text
    assert page.locator("#pair-form").count() == 0
    assert selectors.annotator_ids_paused(project=project) == {annotator_user.annotator.pk}
    # and coming back to the page later says the same
    page.goto(f"{live_server.url}/p/{project.slug}/label/")
    assert "You are paused on this project" in page.get_by_test_id("paused").inner_text()
    assert page.locator("#pair-form").count() == 0
