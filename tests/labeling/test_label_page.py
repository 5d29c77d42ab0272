"""The labeling page and its HTMX endpoints."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from dashboard import aggregates
from labeling import services
from labeling.models import Assignment, Vote
from tests.conftest import make_records

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    "![tracker](https://evil.example/pixel.png)",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<body onload=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "`<script>alert(1)</script>` and ```\n<script>alert(2)</script>\n```",
    "<details open ontoggle=alert(1)>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<form action="https://evil.example"><input type=submit></form>',
    '"><script>alert(1)</script>',
    '<object data="javascript:alert(1)"></object>',
    '<a href="&#106;avascript:alert(1)">x</a>',
]


def login(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_label_page_shows_instructions_prompt_and_both_responses(client, project, pairs, annotator_user):
    response = login(client, annotator_user).get(f"/p/{project.slug}/label/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>better</strong>" in html  # instructions rendered as markdown
    assignment = Assignment.objects.get()
    pair = assignment.pair
    left, right = (pair.response_a, pair.response_b) if assignment.left == "a" else (pair.response_b, pair.response_a)
    assert html.index(left) < html.index(right)
    assert html.count(pair.prompt) == 1  # the shared prompt shown once
    assert "labeled by you" in html


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: (v or "") for k, v in attrs}))


def _active_content(html: str) -> list[str]:
    """Everything in rendered text that a browser would run, load or submit."""
    parser = _TagCollector()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.tags:
        if tag in {
            "script",
            "iframe",
            "img",
            "svg",
            "object",
            "embed",
            "style",
            "math",
            "link",
            "meta",
            "base",
            "form",
            "input",
        }:
            problems.append(tag)
        for name, value in attrs.items():
            lowered = value.strip().lower()
            if name.startswith("on") or name in {"style", "src", "srcdoc", "action", "formaction"}:
                problems.append(f"{tag}[{name}]")
            if lowered.startswith(("javascript:", "data:", "vbscript:")):
                problems.append(f"{tag}[{name}={lowered[:20]}]")
    return problems


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_untrusted_text_is_rendered_inert(client, project, annotator_user, payload):
    # given a pair whose prompt and responses are hostile
    from preferences.records import PreferenceRecord

    record = PreferenceRecord(prompt=f"Q {payload}", response_a=f"A {payload}", response_b=f"B {payload}")
    services.pairs_import_batch(project=project, records=[record], shuffle_sides=False)
    # when the annotator opens it
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    # then the rendered texts hold nothing that can run, load or submit
    rendered = re.findall(r'<div class="md">(.*?)</div>', html, flags=re.S)
    assert len(rendered) == 3  # the prompt turn and both responses
    for fragment in rendered:
        assert _active_content(fragment) == [], fragment


def test_vote_via_htmx_returns_the_next_card(client, project, pairs, annotator_user):
    login(client, annotator_user).get(f"/p/{project.slug}/label/")
    assignment = Assignment.objects.get()
    response = client.post(
        f"/p/{project.slug}/label/{assignment.pk}/vote",
        {"choice": "right", "latency_ms": "1234"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    vote = Vote.objects.get()
    assert vote.choice == assignment.right and vote.latency_ms <= 1234
    next_assignment = Assignment.objects.exclude(pk=assignment.pk).get()
    assert f'data-assignment="{next_assignment.pk}"' in response.content.decode()


def test_vote_without_htmx_redirects_back_to_the_page(client, project, pairs, annotator_user):
    login(client, annotator_user).get(f"/p/{project.slug}/label/")
    assignment = Assignment.objects.get()
    response = client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "left"})
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/label/"
    assert Vote.objects.count() == 1


def test_double_post_gives_one_vote(client, project, pairs, annotator_user):
    login(client, annotator_user).get(f"/p/{project.slug}/label/")
    assignment = Assignment.objects.get()
    url = f"/p/{project.slug}/label/{assignment.pk}/vote"
    first = client.post(url, {"choice": "left"}, HTTP_HX_REQUEST="true")
    second = client.post(url, {"choice": "left"}, HTTP_HX_REQUEST="true")
    assert (first.status_code, second.status_code) == (200, 200)
    assert Vote.objects.count() == 1


def test_vote_on_a_pair_not_assigned_to_you_is_409_and_writes_nothing(
    client, project, pairs, annotator_user, annotator_user2
):
    theirs = services.assignment_next(project=project, user=annotator_user2)
    response = login(client, annotator_user).post(f"/p/{project.slug}/label/{theirs.pk}/vote", {"choice": "left"})
    assert response.status_code == 409
    assert Vote.objects.count() == 0


def test_vote_without_csrf_token_is_403(project, pairs, annotator_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator_user)
    client.get(f"/p/{project.slug}/label/")
    assignment = Assignment.objects.get()
    response = client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "left"})
    assert response.status_code == 403
    assert Vote.objects.count() == 0
    # and with the token it goes through
    token = client.cookies["csrftoken"].value
    ok = client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "left"}, HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 302 and Vote.objects.count() == 1


def test_invalid_choice_is_400_and_writes_nothing(client, project, pairs, annotator_user):
    login(client, annotator_user).get(f"/p/{project.slug}/label/")
    assignment = Assignment.objects.get()
    response = client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "a"})
    assert response.status_code == 400
    assert Vote.objects.count() == 0


def test_empty_queue_says_so(client, project, annotator_user):
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    assert "nothing left for you" in html


def test_annotator_cannot_label_a_project_they_are_not_a_member_of(client, project, pairs, django_user_model):
    from tests.conftest import make_user

    outsider = make_user(django_user_model, "eve", "annotator")
    assert login(client, outsider).get(f"/p/{project.slug}/label/").status_code == 404
    assert login(client, outsider).get("/").content.decode().count(f"/p/{project.slug}/label/") == 0


def test_annotator_sees_their_own_stats_only(client, project, pairs, annotator_user, annotator_user2):
    # given two annotators who both voted
    for user in (annotator_user, annotator_user2):
        assignment = services.assignment_next(project=project, user=user)
        services.vote_submit(assignment_id=assignment.pk, user=user, choice="left", latency_ms=4000)
    # and the votes not folded into the aggregates yet: her count is there, her figures not
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    assert "<strong>1</strong> labeled by you" in html
    assert "Your figures" not in html
    # when the beat task has folded them in and alice opens the page again
    aggregates.aggregates_fold_all()
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    # then she sees her own figures and not bob's name
    assert "<strong>1</strong> labeled by you" in html
    assert "Over your 1 vote counted so far" in html
    assert "median time " in html
    # and one vote is not turned into a share: "100% left" after one vote says nothing
    assert "left side picked in 1 decisive vote (a share needs 10+)" in html
    assert "100%" not in html
    assert "bob" not in html


def test_the_card_says_how_many_pairs_are_left_for_this_annotator(client, project, pairs, annotator_user, settings):
    # given 12 pairs, and bob holding a lease on one of them with K=1: it is not open to alice
    from labeling.selectors import PAIRS_LEFT_CAP

    project.overlap_target = 1
    project.save()
    services.assignment_next(project=project, user=project.members.get(username="bob"))
    # when alice opens the page
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    # then she sees what is left for her (the pair on screen included), not a project-wide guess
    assert '<strong data-testid="left-count">11</strong> pairs left for you' in html
    assert "still need votes" not in html and "Overlap" not in html
    # and the count stops at the cap, saying so
    services.pairs_import_batch(project=project, records=make_records(60, prefix="more"), shuffle_sides=False)
    html = login(client, annotator_user).get(f"/p/{project.slug}/label/").content.decode()
    assert f'<strong data-testid="left-count">{PAIRS_LEFT_CAP}+</strong>' in html


def test_strength_is_not_sent_for_a_tie_from_the_page(client, db, annotator_user):
    # given a project that asks for strength, and a strength left checked before pressing Tie
    project = services.project_create(slug="strength", ask_strength=True)
    project.members.add(annotator_user)
    services.pairs_import_batch(project=project, records=make_records(2), shuffle_sides=False)
    assignment = services.assignment_next(project=project, user=annotator_user)
    response = login(client, annotator_user).post(
        f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "tie", "strength": "3"}, HTTP_HX_REQUEST="true"
    )
    # then the tie is stored, without a strength
    assert response.status_code == 200
    assert Vote.objects.values_list("choice", "strength").get() == ("tie", None)


def test_undo_on_the_page_brings_the_pair_back_with_the_earlier_choice(client, project, pairs, annotator_user):
    # given a vote from the page (HTMX), which answered the next card
    client = login(client, annotator_user)
    assignment = services.assignment_next(project=project, user=annotator_user)
    client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "right"}, HTTP_HX_REQUEST="true")
    # when the annotator presses undo
    html = client.post(f"/p/{project.slug}/label/undo", HTTP_HX_REQUEST="true").content.decode()
    # then the card shows that pair again, with what they had picked
    assert f'data-assignment="{assignment.pk}"' in html
    assert "Vote undone. You had picked <strong>Right</strong>" in html
    assert '<article class="response was-chosen" data-side="right">' in html
    assert Vote.objects.count() == 0
    # and with nothing left to undo, the card says so (409, swapped in)
    nothing = client.post(f"/p/{project.slug}/label/undo", HTTP_HX_REQUEST="true")
    assert nothing.status_code == 409 and "no vote to undo" in nothing.content.decode()
    # and without JavaScript, undo redirects to the page with a message
    client.post(f"/p/{project.slug}/label/{assignment.pk}/vote", {"choice": "left"})
    plain = client.post(f"/p/{project.slug}/label/undo", follow=True)
    assert "Vote undone: you had picked left" in plain.content.decode()


def test_history_lists_ones_votes_and_changes_one(client, project, pairs, annotator_user, annotator_user2):
    # given two votes of alice's and one of bob's
    for user, choice in ((annotator_user, "left"), (annotator_user, "tie"), (annotator_user2, "right")):
        assignment = services.assignment_next(project=project, user=user)
        services.vote_submit(assignment_id=assignment.pk, user=user, choice=choice)
    client = login(client, annotator_user)
    html = client.get(f"/p/{project.slug}/history/").content.decode()
    # then she sees her two, newest first, and not bob's
    assert html.count('class="card history-row"') == 2
    assert html.index('data-choice="tie"') < html.index('data-choice="left"')
    first = Vote.objects.filter(annotator__user=annotator_user).order_by("id").first()
    # when she changes her first vote to right
    response = client.post(f"/p/{project.slug}/history/{first.pk}/change", {"choice": "right"}, follow=True)
    # then it is stored and recorded, and the page says so
    assert "Changed: you now pick right." in response.content.decode()
    changed = Vote.objects.get(pk=first.pk)
    assert changed.choice != changed.shown_left and changed.choice in ("a", "b")
    # and bob's vote cannot be changed from her page
    bobs = Vote.objects.get(annotator__user=annotator_user2)
    refused = client.post(f"/p/{project.slug}/history/{bobs.pk}/change", {"choice": "left"}, follow=True)
    assert "No such vote of yours." in refused.content.decode()
    assert Vote.objects.get(pk=bobs.pk).choice == bobs.choice
