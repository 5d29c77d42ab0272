"""Export formats: trl majority rows, pseudonymous votes, pairwise, CSV safety, parquet row groups."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling import services
from labeling.exporting import annotator_pseudonym, export_rows, export_to_path
from labeling.models import Annotator, Pair
from preferences.records import ImportedVote, PreferenceRecord
from preferences.writers import write_parquet


def record(i: int, *votes: tuple[str, str, int | None], prompt: str | None = None) -> PreferenceRecord:
    return PreferenceRecord(
        prompt=prompt or f"Question {i}?",
        response_a=f"answer A{i}",
        response_b=f"answer B{i}",
        votes=tuple(
            ImportedVote(name, choice, strength, f"because {name}" if strength else "")
            for name, choice, strength in votes
        ),
        external_id=f"ext-{i}",
    )


@pytest.fixture
def labelled(db, annotator_user):
    """Pairs with a/b majorities, a tie majority, a split vote, no votes, and one app vote."""
    project = services.project_create(slug="exp", name="Exp", ask_strength=True, ask_rationale=True, test_percent=50)
    project.members.add(annotator_user)
    services.pairs_import_batch(
        project=project,
        shuffle_sides=False,
        records=[
            record(0, ("r1", "a", 3), ("r2", "a", 1), ("r3", "b", None)),  # a wins, strengths 3 and 1
            record(1, ("r1", "b", None), ("r2", "b", None)),  # b wins, no strength
            record(2, ("r1", "tie", None), ("r2", "tie", None), ("r3", "a", None)),  # tie majority: left out
            record(3, ("r1", "a", None), ("r2", "b", None)),  # split: left out
            record(4),  # unlabeled
        ],
    )
    assignment = services.assignment_next(project=project, user=annotator_user)
    services.vote_submit(
        assignment_id=assignment.pk,
        user=annotator_user,
        choice="left",
        strength=2,
        rationale="=clearer",
        latency_ms=1234,
    )
    return project


def test_trl_rows_follow_the_majority_with_a_margin_column(labelled):
    # when
    rows = list(export_rows(project=labelled, fmt="trl"))
    # then the app vote may add to any pair; recompute what the majority must be
    by_prompt = {r["prompt"]: r for r in rows}
    assert "Question 2?" not in by_prompt  # a tie majority carries no preference
    q0 = by_prompt["Question 0?"]
    assert (q0["chosen"], q0["rejected"]) == ("answer A0", "answer B0")
    assert q0["margin"] in (1.0, 2.0, 3.0)  # median of the winning side's strengths
    assert by_prompt["Question 1?"]["chosen"] == "answer B1"
    assert all(set(r) == {"prompt", "chosen", "rejected", "margin"} for r in rows)


def test_trl_rows_have_no_margin_when_nobody_gave_a_strength(project, pairs):
    # given votes without strengths
    services.pairs_import_batch(project=project, shuffle_sides=False, records=[record(7, ("x", "b", None))])
    # when
    rows = list(export_rows(project=project, fmt="trl"))
    # then
    assert rows == [{"prompt": "Question 7?", "chosen": "answer B7", "rejected": "answer A7"}]


def test_votes_rows_are_pseudonymous_and_stable(labelled, annotator_user):
    # when exported twice
    first = list(export_rows(project=labelled, fmt="votes"))
    second = list(export_rows(project=labelled, fmt="votes"))
    # then
    assert first == second and len(first) == 3 + 2 + 3 + 2 + 1
    names = {r["annotator"] for r in first}
    assert len(names) == 4 and all(n.startswith("anon-") and len(n) == 21 for n in names)
    app_vote = next(r for r in first if r["latency_ms"] is not None)
    user_annotator = Annotator.objects.get(user=annotator_user)
    assert app_vote["annotator"] == annotator_pseudonym(annotator_id=user_annotator.pk)
    assert app_vote["shown_left"] in ("a", "b") and app_vote["strength"] == 2 and app_vote["rationale"] == "=clearer"
    assert app_vote["created_at"].endswith("+00:00")
    assert not any("alice" in json.dumps(r) or r["annotator"] == "r1" for r in first)


def test_pseudonyms_change_with_the_secret_key(labelled, settings):
    # given
    before = annotator_pseudonym(annotator_id=1)
    # when
    settings.SECRET_KEY = "another-key-" * 4
    # then
    assert annotator_pseudonym(annotator_id=1) != before


def test_pairwise_rows_hold_every_pair_and_vote(labelled, annotator_user):
    # when
    rows = list(export_rows(project=labelled, fmt="pairwise"))
    # then
    assert [r["id"] for r in rows] == ["ext-0", "ext-1", "ext-2", "ext-3", "ext-4"]
    assert sum(len(r["votes"]) for r in rows) == 11
    q0 = rows[0]["votes"][0]
    assert q0 == {"annotator": "r1", "choice": "a", "strength": 3, "rationale": "because r1"}
    app_names = {v["annotator"] for r in rows for v in r["votes"]} - {"r1", "r2", "r3"}
    assert app_names == {annotator_pseudonym(annotator_id=Annotator.objects.get(user=annotator_user).pk)}


def test_split_and_min_votes_filter_pairs(labelled):
    # given
    splits = dict(Pair.objects.filter(project=labelled).values_list("external_id", "split"))
    # when
    train = list(export_rows(project=labelled, fmt="pairwise", split="train"))
    three_votes = list(export_rows(project=labelled, fmt="pairwise", min_votes=3))
    # then
    assert {r["id"] for r in train} == {k for k, v in splits.items() if v == "train"}
    assert all(len(r["votes"]) >= 3 for r in three_votes) and len(three_votes) >= 2


def test_pairs_are_read_in_chunks_not_one_query_per_pair(labelled, django_assert_max_num_queries):
    # given a chunk of two pairs over five pairs
    # when / then: one pairs query plus one votes query per chunk, plus the margin check
    with django_assert_max_num_queries(1 + 3 + 1):
        assert len(list(export_rows(project=labelled, fmt="pairwise", chunk_size=2))) == 5


def test_csv_cells_that_look_like_formulas_are_neutralised(project, tmp_path):
    # given texts a spreadsheet would run
    texts = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "'=already quoted"]
    services.pairs_import_batch(
        project=project,
        shuffle_sides=False,
        records=[
            PreferenceRecord(prompt=t, response_a="safe a", response_b=t + " b", votes=(ImportedVote("=cmd", "a"),))
            for t in texts
        ],
    )
    # when
    export_to_path(project=project, fmt="pairwise", path=tmp_path / "out.csv")
    # then no cell starts with a formula character
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert '\'=HYPERLINK("http://x")' in cells and "''=already quoted" in cells
    assert any('"annotator":"=cmd"' in c and c.startswith("[") for c in cells)  # inside JSON: inert


def test_parquet_is_written_in_row_groups(labelled, tmp_path):
    # given
    import pyarrow.parquet as pq

    rows = list(export_rows(project=labelled, fmt="votes")) * 3  # 33 rows
    # when
    n = write_parquet(iter(rows), tmp_path / "v.parquet", fmt="votes", row_group_rows=10)
    # then
    meta = pq.ParquetFile(tmp_path / "v.parquet").metadata
    assert n == 33 and meta.num_rows == 33 and meta.num_row_groups == 4


def test_command_prints_summary_and_refuses_to_overwrite(labelled, tmp_path):
    # given
    out = io.StringIO()
    path = tmp_path / "trl.jsonl"
    # when
    call_command(
        "export_preferences", "--project", "exp", "--format", "trl", "-o", str(path), "--no-progress", stdout=out
    )
    # then
    # (pairs 0 and 1 have majorities; the app vote went to the least-served pair, 4)
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == {"rows": 3, "path": str(path)}
    with pytest.raises(CommandError, match="exists; pass --force"):
        call_command("export_preferences", "--project", "exp", "--format", "trl", "-o", str(path))
    with pytest.raises(CommandError, match="cannot tell what to write"):
        call_command("export_preferences", "--project", "exp", "--format", "trl", "-o", str(tmp_path / "x.xlsx"))
    with pytest.raises(CommandError, match="no project 'nope'"):
        call_command("export_preferences", "--project", "nope", "--format", "trl", "-o", str(tmp_path / "y.jsonl"))


@pytest.mark.parametrize("file_type", ["jsonl", "csv", "parquet"])
def test_admin_downloads_each_file_type(client, admin_user, labelled, file_type):
    # given
    client.force_login(admin_user)
    # when
    response = client.get(
        reverse("project-export-download", args=["exp"]),
        {"format": "pairwise", "split": "all", "min_votes": "0", "file_type": file_type},
    )
    # then
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert f'filename="exp-pairwise-all.{file_type}"' in response["Content-Disposition"]
    if file_type == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(io.BytesIO(body)).num_rows == 5
    else:
        assert body.count(b"ext-") == 5


def test_download_with_bad_options_is_400(client, admin_user, labelled):
    # given
    client.force_login(admin_user)
    url = reverse("project-export-download", args=["exp"])
    # when / then
    assert client.get(url, {"format": "excel"}).status_code == 400
    assert client.get(url, {"format": "trl", "min_votes": "many"}).status_code == 400
    assert client.get(url, {"format": "trl", "file_type": "xlsx"}).status_code == 400
    assert client.get(reverse("project-export", args=["exp"])).status_code == 200
