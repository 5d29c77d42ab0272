"""The training snapshot: majority labels, splits, ties, strengths and the fingerprint."""

from labeling import services as labeling_services
from labeling.models import Pair, Split
from preferences.records import ImportedVote, PreferenceRecord
from rewardmodel.snapshot import training_snapshot_take
from tests.conftest import make_records


def _record(i, choices, strengths=None):
    strengths = strengths or [None] * len(choices)
    return PreferenceRecord(
        prompt=f"question {i}",
        response_a=f"good answer {i}",
        response_b=f"bad answer {i}",
        votes=tuple(ImportedVote(f"r{k}", c, s) for k, (c, s) in enumerate(zip(choices, strengths))),
    )


def test_snapshot_labels_by_majority_and_keeps_ties_only_for_scoring(db):
    # given pairs won by a, won by b, tied, and unvoted, on both splits
    project = labeling_services.project_create(slug="snap", test_percent=50)
    records = [
        _record(i, c) for i, c in enumerate([("a", "a", "b"), ("b", "b"), ("a", "b"), ("tie", "both_bad", "a"), ()] * 6)
    ]
    labeling_services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    # when the snapshot is taken
    snap = training_snapshot_take(project=project)
    # then only pairs with a non-tie majority train or evaluate, in chosen/rejected form
    pairs = {p.pk: p for p in Pair.objects.filter(project=project)}
    for tp in snap.train_pairs + snap.eval_pairs:
        pair = pairs[int(tp.pair_id)]
        winner = "a" if pair.votes_a > pair.votes_b else "b"
        assert tp.chosen == (pair.response_a if winner == "a" else pair.response_b)
        assert pair.votes_a != pair.votes_b and pair.votes_tie < max(pair.votes_a, pair.votes_b)
    assert all(pairs[int(p.pair_id)].split == Split.TRAIN for p in snap.train_pairs)
    assert all(pairs[int(p.pair_id)].split == Split.TEST for p in snap.eval_pairs)
    # and every voted test pair is kept for predictions, ties with no winner
    voted_test = {pk for pk, p in pairs.items() if p.split == Split.TEST and p.vote_count}
    assert {p.pair_id for p in snap.test_pairs} == voted_test
    assert [p.pair_id for p in snap.eval_voted_pairs] == [int(p.pair_id) for p in snap.eval_pairs]
    assert any(p.winner is None for p in snap.test_pairs)
    assert snap.n_votes == sum(p.vote_count for p in pairs.values())


def test_strength_is_the_low_median_of_the_winning_votes(db):
    project = labeling_services.project_create(slug="strength", test_percent=0)
    labeling_services.pairs_import_batch(
        project=project, records=[_record(1, ("a", "a", "a", "b"), (3, 1, 2, 3))], shuffle_sides=False
    )
    (pair,) = training_snapshot_take(project=project).train_pairs
    assert pair.strength == 2


def test_fingerprint_changes_with_any_vote_count(db):
    # given a snapshot
    project = labeling_services.project_create(slug="fp", test_percent=0)
    labeling_services.pairs_import_batch(
        project=project, records=[_record(i, ("a",)) for i in range(3)], shuffle_sides=False
    )
    before = training_snapshot_take(project=project).sha256
    assert training_snapshot_take(project=project).sha256 == before  # stable
    # when one pair gains a vote
    Pair.objects.filter(project=project).filter(pk=Pair.objects.filter(project=project).first().pk).update(
        votes_b=1, vote_count=2
    )
    # then the fingerprint differs
    assert training_snapshot_take(project=project).sha256 != before


def test_training_snapshot_reads_the_final_choice(db, annotator_user, annotator_user2):
    # given a project without held-out pairs where two annotators both pick a
    project = labeling_services.project_create(slug="snap-final", test_percent=0, overlap_target=2, ask_strength=True)
    project.members.add(annotator_user, annotator_user2)
    labeling_services.pairs_import_batch(project=project, records=make_records(1), shuffle_sides=False)
    votes = {}
    for user in (annotator_user, annotator_user2):
        assignment = labeling_services.assignment_next(project=project, user=user)
        screen = "left" if assignment.left == "a" else "right"
        votes[user.pk] = labeling_services.vote_submit(
            assignment_id=assignment.pk, user=user, choice=screen, strength=1
        )[0]
    assert training_snapshot_take(project=project).train_pairs[0].chosen.startswith("A careful")
    # when alice changes her vote to b (much better) and bob undoes his
    alice_vote = votes[annotator_user.pk]
    other = "right" if alice_vote.shown_left == "a" else "left"
    labeling_services.vote_change(vote_id=alice_vote.pk, user=annotator_user, choice=other, strength=3)
    labeling_services.vote_undo(assignment_id=votes[annotator_user2.pk].assignment_id, user=annotator_user2)
    # then the snapshot trains on b, with alice's new strength
    snapshot = training_snapshot_take(project=project)
    assert snapshot.n_votes == 1
    assert snapshot.train_pairs[0].chosen.startswith("meh")
    assert snapshot.train_pairs[0].strength == 3
