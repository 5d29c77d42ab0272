"""Gold pairs, repeat checks, the automatic pause and reinstating (docs/label_quality.md)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from scipy.stats import binomtest

from labeling import selectors, services
from labeling.models import AnnotatorStanding, Assignment, Pair, RepeatCheck, Vote
from lib.errors import Conflict, InvalidInput
from tests.conftest import make_records

# The lease's SQL differs between SQLite and PostgreSQL: these run on both.
pytestmark = pytest.mark.both_databases


def _rates(project, *, gold=0, repeat=0, min_votes=None):
    project.gold_percent, project.repeat_percent = gold, repeat
    if min_votes is not None:
        project.gold_min_votes = min_votes
    project.save()


def _gold_pairs(project, n, prefix="check"):
    """n gold pairs, answer "a" (the first response), imported as a TRL file with --gold is."""
    services.pairs_import_batch(
        project=project, records=make_records(n, votes=1, prefix=prefix), shuffle_sides=False, gold_first=True
    )


def _screen(assignment, pair_choice: str) -> str:
    """The screen choice that means `pair_choice` on this lease."""
    return "left" if assignment.left == pair_choice else "right"


def _wrong(assignment) -> str:
    gold = Pair.objects.get(pk=assignment.pair_id).gold
    return _screen(assignment, "b" if gold == "a" else "a")


# --------------------------------------------------------------------------- #
# Gold pairs
# --------------------------------------------------------------------------- #
def test_gold_import_stores_the_answer_and_no_vote(project):
    # when a TRL file is imported with --gold, sides shuffled as TRL imports are
    services.pairs_import_batch(project=project, records=make_records(40, votes=1), shuffle_sides=True, gold_first=True)
    # then every pair is gold, its answer the chosen (first) response wherever it landed, and no vote is stored
    pairs = list(Pair.objects.filter(project=project))
    assert len(pairs) == 40 and all(p.gold in ("a", "b") for p in pairs)
    for p in pairs:
        chosen = p.response_a if p.gold == "a" else p.response_b
        assert chosen.startswith("A careful")
    assert {p.gold for p in pairs} == {"a", "b"}  # the shuffle moved some
    assert not Vote.objects.exists() and all(p.vote_count == 0 for p in pairs)


def test_gold_pairs_are_served_at_the_project_rate(project, annotator_user, monkeypatch):
    # given 600 ordinary pairs and 200 gold pairs, a 10% gold rate, and a seeded draw
    services.pairs_import_batch(project=project, records=make_records(600), shuffle_sides=False)
    _gold_pairs(project, 200)
    _rates(project, gold=10)
    monkeypatch.setattr(services, "_draw", __import__("random").Random(16))
    # when the annotator is served 500 pairs
    gold = 0
    for _ in range(500):
        lease = services.assignment_next(project=project, user=annotator_user)
        gold += Pair.objects.get(pk=lease.pair_id).gold != ""
        services.assignment_skip(assignment_id=lease.pk, user=annotator_user)
    # then about a tenth of them are gold (two-sided binomial test)
    assert binomtest(gold, 500, 0.10).pvalue > 0.001, gold
    assert 20 < gold < 80


def test_gold_pairs_go_to_every_annotator_whatever_k(project, annotator_user, annotator_user2):
    # given one gold pair, K = 1, and a gold rate of 100%
    project.overlap_target = 1
    _rates(project, gold=100)
    _gold_pairs(project, 1)
    # when both annotators ask for a pair and vote
    for user in (annotator_user, annotator_user2):
        lease = services.assignment_next(project=project, user=user)
        # then each gets the gold pair: K does not cap gold pairs
        assert lease is not None and Pair.objects.get(pk=lease.pair_id).gold == "a"
        services.vote_submit(assignment_id=lease.pk, user=user, choice=_screen(lease, "a"))
    assert services.assignment_next(project=project, user=annotator_user) is None


def test_a_gold_lease_looks_like_any_other(client, project, annotator_user):
    # given only gold pairs
    _rates(project, gold=100)
    _gold_pairs(project, 2)
    client.force_login(annotator_user)
    # when the annotator asks the API and the page for a pair
    body = client.get(f"/api/v1/projects/{project.slug}/next").json()
    page = client.get(f"/p/{project.slug}/label/").content.decode()
    # then nothing says it is gold, or which side is right
    assert set(body) == {"assignment_id", "prompt", "left", "right", "expires_at", "choices"}
    # (as a word: a CSRF token may hold the letters)
    assert not re.search(r"\bgold\b", page, re.I) and not re.search(r"\bgold\b", str(body), re.I)


def test_pairs_left_counts_ordinary_pairs_only(client, project, annotator_user):
    services.pairs_import_batch(project=project, records=make_records(3), shuffle_sides=False)
    _gold_pairs(project, 5)
    _rates(project, gold=0)
    user_pairs = selectors.pairs_left_for_annotator(project=project, user=annotator_user, holding=False)
    assert user_pairs == 3


# --------------------------------------------------------------------------- #
# The automatic pause
# --------------------------------------------------------------------------- #
def _answer_gold(project, user, n, *, wrong=True):
    for _ in range(n):
        lease = services.assignment_next(project=project, user=user)
        choice = _wrong(lease) if wrong else _screen(lease, Pair.objects.get(pk=lease.pair_id).gold)
        services.vote_submit(assignment_id=lease.pk, user=user, choice=choice)


def test_ten_wrong_gold_votes_pause_the_annotator(project, annotator_user):
    # given gold pairs only, and ordinary pairs left to label
    _rates(project, gold=100)
    _gold_pairs(project, 15)
    services.pairs_import_batch(project=project, records=make_records(5), shuffle_sides=False)
    # when the annotator answers nine gold pairs wrong, they are not paused yet (fewer than 10)
    _answer_gold(project, annotator_user, 9)
    annotator = annotator_user.annotator
    assert not selectors.annotator_is_paused(project=project, annotator=annotator)
    # and the tenth wrong answer pauses them: Wilson upper bound of 0/10 is 0.28 < 0.6
    _answer_gold(project, annotator_user, 1)
    standing = AnnotatorStanding.objects.get(project=project, annotator=annotator)
    assert standing.paused_at is not None and "0 of 10" in standing.pause_reason
    assert selectors.annotator_ids_paused(project=project) == {annotator.pk}
    # then they get no pair, with the reason, though ordinary pairs are open
    with pytest.raises(services.AnnotatorPaused, match="paused"):
        services.assignment_next(project=project, user=annotator_user)
    assert not Assignment.objects.filter(annotator=annotator, state="live").exists()


def test_right_gold_votes_do_not_pause(project, annotator_user):
    _rates(project, gold=100)
    _gold_pairs(project, 12)
    _answer_gold(project, annotator_user, 12, wrong=False)
    assert selectors.annotator_ids_paused(project=project) == set()
    assert selectors.annotator_gold_counts(project=project, annotator_id=annotator_user.annotator.pk) == (12, 12)


def test_half_right_is_not_paused_but_all_wrong_with_fewer_needed_is(project, annotator_user, annotator_user2):
    # 6 of 12 right: the interval [0.25, 0.75] reaches 0.6, no pause
    _rates(project, gold=100, min_votes=5)
    _gold_pairs(project, 12)
    for i in range(12):
        _answer_gold(project, annotator_user, 1, wrong=i % 2 == 0)
    assert selectors.annotator_ids_paused(project=project) == set()
    # the project's own minimum: 5 wrong of 5 pause (upper bound 0.43)
    _answer_gold(project, annotator_user2, 5)
    assert selectors.annotator_ids_paused(project=project) == {annotator_user2.annotator.pk}


def test_paused_annotator_gets_the_page_and_the_api_says_why(client, project, annotator_user, admin_user):
    _rates(project, gold=100)
    _gold_pairs(project, 12)
    services.pairs_import_batch(project=project, records=make_records(3), shuffle_sides=False)
    _answer_gold(project, annotator_user, 10)
    client.force_login(annotator_user)
    # the page: 403, saying so and whom to contact, with no pair on it
    page = client.get(f"/p/{project.slug}/label/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "You are paused on this project" in text and admin_user.username in text
    assert 'id="pair-form"' not in text
    # the API: 403 with the message
    response = client.get(f"/api/v1/projects/{project.slug}/next")
    assert response.status_code == 403 and "paused" in response.json()["detail"]


def test_vote_and_next_keeps_the_vote_that_pauses_and_says_why(client, project, annotator_user):
    _rates(project, gold=100)
    _gold_pairs(project, 12)
    _answer_gold(project, annotator_user, 9)
    client.force_login(annotator_user)
    lease = client.get(f"/api/v1/projects/{project.slug}/next").json()
    assignment = Assignment.objects.get(pk=lease["assignment_id"])
    response = client.post(
        f"/api/v1/assignments/{assignment.pk}/vote-and-next",
        {"choice": _wrong(assignment)},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["next"] is None and "paused" in body["detail"]
    assert Vote.objects.filter(annotator=annotator_user.annotator).count() == 10


def test_reinstate_needs_a_reason_and_old_gold_votes_do_not_pause_again(project, annotator_user, admin_user):
    # given an annotator paused by 10 wrong gold answers
    _rates(project, gold=100)
    _gold_pairs(project, 14)
    _answer_gold(project, annotator_user, 10)
    annotator = annotator_user.annotator
    # when an admin reinstates them without a reason, it is refused and nothing changes
    with pytest.raises(InvalidInput):
        services.annotator_reinstate(project=project, annotator=annotator, by=admin_user, reason="  ")
    assert selectors.annotator_is_paused(project=project, annotator=annotator)
    # with a reason, it is recorded
    services.annotator_reinstate(project=project, annotator=annotator, by=admin_user, reason="Talked it through.")
    standing = AnnotatorStanding.objects.get(project=project, annotator=annotator)
    assert standing.paused_at is None and standing.reinstated_by == admin_user
    assert standing.reinstate_reason == "Talked it through." and standing.reinstated_at is not None
    assert selectors.annotator_ids_paused(project=project) == set()
    # then they get pairs again, and one more wrong answer does not re-pause them on the old votes
    _answer_gold(project, annotator_user, 1)
    assert not selectors.annotator_is_paused(project=project, annotator=annotator)
    # and reinstating someone not paused is a Conflict
    with pytest.raises(Conflict):
        services.annotator_reinstate(project=project, annotator=annotator, by=admin_user, reason="again")


def test_admin_sees_the_pause_and_reinstates_from_the_members_page(client, project, annotator_user, admin_user):
    _rates(project, gold=100)
    _gold_pairs(project, 11)
    _answer_gold(project, annotator_user, 10)
    client.force_login(admin_user)
    page = client.get(f"/p/{project.slug}/members/").content.decode()
    assert f'data-testid="paused-{annotator_user.username}"' in page and "0 of 10" in page
    url = f"/p/{project.slug}/members/{annotator_user.pk}/reinstate"
    # an empty reason is refused
    client.post(url, {"reason": ""})
    assert selectors.annotator_is_paused(project=project, annotator=annotator_user.annotator)
    # a reason reinstates
    response = client.post(url, {"reason": "New instructions read."})
    assert response.status_code == 302
    assert not selectors.annotator_is_paused(project=project, annotator=annotator_user.annotator)
    page = client.get(f"/p/{project.slug}/members/").content.decode()
    assert "New instructions read." in page and f"by {admin_user.username}" in page


def test_reinstate_api(client, project, annotator_user, admin_user):
    _rates(project, gold=100)
    _gold_pairs(project, 11)
    _answer_gold(project, annotator_user, 10)
    client.force_login(admin_user)
    url = f"/api/v1/projects/{project.slug}/annotators/{annotator_user.username}/reinstate"
    assert client.post(url, {"reason": ""}, content_type="application/json").status_code in (400, 422)
    response = client.post(url, {"reason": "ok now"}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["paused"] is False and response.json()["reinstated_by"] == admin_user.username
    assert client.post(url, {"reason": "again"}, content_type="application/json").status_code == 409


# --------------------------------------------------------------------------- #
# Repeat checks
# --------------------------------------------------------------------------- #
def _vote_through(project, user, n):
    votes = []
    for _ in range(n):
        lease = services.assignment_next(project=project, user=user)
        vote, _ = services.vote_submit(assignment_id=lease.pk, user=user, choice="left")
        votes.append(vote)
    return votes


def test_no_repeat_before_twenty_other_pairs(project, annotator_user):
    services.pairs_import_batch(project=project, records=make_records(30), shuffle_sides=False)
    _rates(project, repeat=0)
    _vote_through(project, annotator_user, 20)
    project.repeat_percent = 100  # beyond the form's limit: every lease tries a repeat
    project.save()
    lease = services.assignment_next(project=project, user=annotator_user)
    assert not lease.repeat and not Vote.objects.filter(pair_id=lease.pair_id).exists()


def test_repeat_is_served_sides_swapped_and_stored_apart(project, annotator_user):
    # given 21 votes (the first has 20 after it)
    services.pairs_import_batch(project=project, records=make_records(30), shuffle_sides=False)
    _rates(project, repeat=0)
    votes = _vote_through(project, annotator_user, 21)
    first = Vote.objects.get(pk=votes[0].pk)
    pair_before = Pair.objects.get(pk=first.pair_id)
    project.repeat_percent = 100
    project.save()
    # when the next lease is drawn
    lease = services.assignment_next(project=project, user=annotator_user)
    # then it is the first vote's pair, with the other side on the left
    assert lease.repeat and lease.pair_id == first.pair_id
    assert lease.left != first.shown_left
    # when they answer it as they did the first time (the same response, now on the other side)
    answer, created = services.vote_submit(
        assignment_id=lease.pk, user=annotator_user, choice=_screen(lease, first.choice)
    )
    # then the answer is a RepeatCheck, not a vote: the pair's counts and votes are unchanged
    assert created
    check = RepeatCheck.objects.get(annotator=annotator_user.annotator)
    assert (check.pair_id, check.vote_id, check.consistent) == (first.pair_id, first.pk, True)
    assert (check.shown_left, check.original_left) == (lease.left, first.shown_left)
    assert Vote.objects.filter(pair_id=first.pair_id).count() == 1
    pair_after = Pair.objects.get(pk=first.pair_id)
    assert (pair_after.vote_count, pair_after.votes_a, pair_after.slots_taken) == (
        pair_before.vote_count,
        pair_before.votes_a,
        pair_before.slots_taken,
    )
    # and a retry gives the same answer back, a different one is a Conflict
    again, created = services.vote_submit(
        assignment_id=lease.pk, user=annotator_user, choice=_screen(lease, first.choice)
    )
    assert not created and again.pk == first.pk
    with pytest.raises(Conflict):
        services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="tie")
    # and self-consistency counts it
    counts = selectors.annotators_repeat_counts(project=project, annotator_ids=[annotator_user.annotator.pk])
    assert counts == {annotator_user.annotator.pk: (1, 1)}


def test_an_inconsistent_repeat_counts_as_such(project, annotator_user):
    services.pairs_import_batch(project=project, records=make_records(30), shuffle_sides=False)
    _rates(project, repeat=0)
    votes = _vote_through(project, annotator_user, 21)
    project.repeat_percent = 100
    project.save()
    lease = services.assignment_next(project=project, user=annotator_user)
    # "left" again: the other response this time
    services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="left")
    check = RepeatCheck.objects.get()
    assert check.vote_id == votes[0].pk and check.consistent is False


def test_skipped_and_expired_repeats_take_no_slot(project, annotator_user):
    services.pairs_import_batch(project=project, records=make_records(30), shuffle_sides=False)
    _rates(project, repeat=0)
    _vote_through(project, annotator_user, 22)
    project.repeat_percent = 100
    project.save()
    slots = dict(Pair.objects.values_list("pk", "slots_taken"))
    # a skipped repeat gives nothing back (it held nothing) and is not served again
    lease = services.assignment_next(project=project, user=annotator_user)
    assert lease.repeat
    services.assignment_skip(assignment_id=lease.pk, user=annotator_user)
    assert dict(Pair.objects.values_list("pk", "slots_taken")) == slots
    # an expired one neither
    later = timezone.now() + timedelta(hours=1)
    lease2 = services.assignment_next(project=project, user=annotator_user)
    assert lease2.repeat and lease2.pair_id != lease.pair_id
    services.assignments_reclaim_expired(now=later)
    assert Assignment.objects.get(pk=lease2.pk).state == "expired"
    assert dict(Pair.objects.values_list("pk", "slots_taken")) == slots
    # a late answer on it still counts as a repeat check
    services.vote_submit(assignment_id=lease2.pk, user=annotator_user, choice="left", now=later)
    assert RepeatCheck.objects.filter(assignment_id=lease2.pk).exists()
    assert not RepeatCheck.objects.filter(assignment_id=lease.pk).exists()


def test_repeats_and_gold_stay_out_of_the_label_counts(project, annotator_user):
    # the pair counters (what training reads) count votes only
    services.pairs_import_batch(project=project, records=make_records(25), shuffle_sides=False)
    _rates(project, repeat=0)
    _vote_through(project, annotator_user, 21)
    total = sum(Pair.objects.values_list("vote_count", flat=True))
    project.repeat_percent = 100
    project.save()
    lease = services.assignment_next(project=project, user=annotator_user)
    services.vote_submit(assignment_id=lease.pk, user=annotator_user, choice="right")
    assert sum(Pair.objects.values_list("vote_count", flat=True)) == total == Vote.objects.count()


def test_gold_pick_walks_its_own_partial_index_on_postgresql(project, annotator_user):
    # The gold pick reads the project's gold pairs only, in order, whatever the number of ordinary pairs.
    import json

    from django.db import connection

    from labeling import sql

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan")
    services.pairs_import_batch(project=project, records=make_records(3000), shuffle_sides=False)
    _gold_pairs(project, 30)
    params = {"project": project.pk, "k": 3, "annotator": 1, "left": "a", "served": timezone.now()}
    params["expires"] = params["served"]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_pair")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql.LEASE_STATEMENTS_POSTGRESQL["gold"], params)
        plan = json.dumps(cursor.fetchone()[0])
    assert "pair_gold_queue_idx" in plan, plan
    assert '"Node Type": "Sort"' not in plan, plan


def test_gold_pairs_are_never_in_a_trl_export(project, annotator_user):
    from labeling import exporting

    # given voted ordinary pairs and a voted gold pair
    services.pairs_import_batch(project=project, records=make_records(3, votes=1), shuffle_sides=False)
    _gold_pairs(project, 2)
    _rates(project, gold=100)
    _answer_gold(project, annotator_user, 2, wrong=False)
    # when the project is exported as TRL, then only the ordinary pairs are in it
    rows = list(exporting.export_rows(project=project, fmt="trl"))
    assert len(rows) == 3 and all(not r["prompt"].startswith("check") for r in rows)
    # while the pairwise export keeps every pair (it round-trips)
    assert len(list(exporting.export_rows(project=project, fmt="pairwise"))) == 5


def test_a_records_gold_answer_is_stored_in_pair_terms_through_the_shuffle(project):
    import dataclasses

    # given records whose gold answer is b, with their votes kept
    records = [dataclasses.replace(r, gold="b") for r in make_records(30, votes=2)]
    services.pairs_import_batch(project=project, records=records, shuffle_sides=True)
    # then each pair's answer names the same response, whichever side it landed on
    for pair in Pair.objects.filter(project=project):
        assert (pair.response_a if pair.gold == "a" else pair.response_b).startswith("meh")
        assert pair.vote_count == 2
    # and a re-import never makes a stored ordinary pair gold
    services.pairs_import_batch(project=project, records=make_records(2, prefix="plain"), shuffle_sides=False)
    services.pairs_import_batch(
        project=project, records=make_records(2, prefix="plain"), shuffle_sides=False, gold_first=True
    )
    assert set(Pair.objects.filter(prompt__startswith="plain").values_list("gold", flat=True)) == {""}
