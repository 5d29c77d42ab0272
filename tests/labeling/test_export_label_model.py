"""Exports with a label model (p_chosen in trl and pairwise) and with gold pairs (out of trl, kept in pairwise)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling import services
from labeling.exporting import ExportFailed, export_rows, export_to_path
from labeling.models import Pair, Vote
from preferences.formats import parse_row
from preferences.label_models import LABEL_MODELS, LabelVote, label_model_fit
from preferences.readers import source_from_path
from preferences.records import ImportedVote, PreferenceRecord

# r1 and r2 are careful, r3 always says the opposite of them; pair 9 only has ties.
SIDES = "abbabaabab"


def record(i: int) -> PreferenceRecord:
    right = SIDES[i % len(SIDES)]
    wrong = "b" if right == "a" else "a"
    votes = (ImportedVote("r1", right), ImportedVote("r2", right), ImportedVote("r3", wrong))
    if i == 9:
        votes = (ImportedVote("r1", "tie"), ImportedVote("r2", "both_bad"))
    return PreferenceRecord(
        prompt=f"Question {i}?", response_a=f"answer A{i}", response_b=f"answer B{i}", votes=votes, external_id=f"e{i}"
    )


@pytest.fixture
def project(db):
    project = services.project_create(slug="lm", name="LM")
    services.pairs_import_batch(project=project, shuffle_sides=False, records=[record(i) for i in range(10)])
    # pairs 0 and 1 are gold pairs, with their right answers
    for i in (0, 1):
        Pair.objects.filter(project=project, external_id=f"e{i}").update(gold=SIDES[i])
    return project


def expected_fit(project, model):
    votes = [
        LabelVote(pair, annotator, choice)
        for pair, annotator, choice in Vote.objects.filter(project=project)
        .order_by("id")
        .values_list("pair_id", "annotator_id", "choice")
    ]
    gold = dict(Pair.objects.filter(project=project).exclude(gold="").values_list("id", "gold"))
    return label_model_fit(votes, model=model, gold=gold)


def pair_ids(project) -> dict[str, int]:
    return dict(Pair.objects.filter(project=project).values_list("external_id", "id"))


def test_trl_leaves_gold_pairs_out_with_or_without_a_label_model(project):
    plain = list(export_rows(project=project, fmt="trl"))
    assert [r["prompt"] for r in plain] == [f"Question {i}?" for i in range(2, 9)]
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in plain)
    for model in LABEL_MODELS:
        prompts = {r["prompt"] for r in export_rows(project=project, fmt="trl", label_model=model)}
        assert not prompts & {"Question 0?", "Question 1?"}


@pytest.mark.parametrize("model", LABEL_MODELS)
def test_trl_rows_are_labelled_by_the_model_with_p_chosen(project, model):
    # given the model fitted on the project's votes, gold seeding it
    p_a = expected_fit(project, model).p_a
    ids = pair_ids(project)
    # when
    rows = list(export_rows(project=project, fmt="trl", label_model=model))
    # then each row is a pair the model labels, chosen is its favoured side, p_chosen its P
    assert [r["prompt"] for r in rows] == [f"Question {i}?" for i in range(2, 9)]  # no gold, no tie-only pair
    for row in rows:
        i = int(row["prompt"].split()[1][:-1])
        p = p_a[ids[f"e{i}"]]
        favoured = "a" if p >= 0.5 else "b"
        assert row["chosen"] == f"answer {favoured.upper()}{i}"
        assert row["p_chosen"] == pytest.approx(max(p, 1 - p))
        assert 0.5 <= row["p_chosen"] <= 1.0
        assert favoured == SIDES[i]  # two careful annotators against one contrarian: every model gets it right
    assert list(rows[0]) == ["prompt", "chosen", "rejected", "p_chosen"]
    if model == "majority":
        assert {r["p_chosen"] for r in rows} == {1.0}
        plain = list(export_rows(project=project, fmt="trl"))
        assert [{k: v for k, v in r.items() if k != "p_chosen"} for r in rows] == plain


@pytest.mark.parametrize("model", LABEL_MODELS)
def test_pairwise_rows_gain_p_of_response_a_and_keep_gold(project, model):
    p_a = expected_fit(project, model).p_a
    ids = pair_ids(project)
    rows = {r["id"]: r for r in export_rows(project=project, fmt="pairwise", label_model=model)}
    assert len(rows) == 10  # every pair, gold and tie-only ones too
    for i in range(2, 9):
        assert rows[f"e{i}"]["p_chosen"] == pytest.approx(p_a[ids[f"e{i}"]])  # P(response_a better)
        assert (rows[f"e{i}"]["p_chosen"] >= 0.5) == (SIDES[i] == "a")
        assert rows[f"e{i}"]["gold"] is None
    assert rows["e9"]["p_chosen"] is None  # no a/b vote: no P
    assert (rows["e0"]["gold"], rows["e1"]["gold"]) == ("a", "b")
    assert rows["e0"]["p_chosen"] is None  # gold pairs never get a training label


def test_pairwise_without_gold_pairs_or_a_model_has_neither_column(db):
    project = services.project_create(slug="plain", name="Plain")
    services.pairs_import_batch(project=project, shuffle_sides=False, records=[record(2)])
    (row,) = export_rows(project=project, fmt="pairwise")
    assert "gold" not in row and "p_chosen" not in row


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_files_carry_p_chosen_and_gold_and_re_import_the_gold(project, tmp_path, suffix):
    # when
    path = tmp_path / f"pairs.{suffix}"
    assert export_to_path(project=project, fmt="pairwise", path=path, label_model="dawid_skene").rows == 10
    trl = tmp_path / f"trl.{suffix}"
    assert export_to_path(project=project, fmt="trl", path=trl, label_model="dawid_skene").rows == 7
    # then the readers take both back: pairwise gold round-trips, p_chosen is accepted
    rows = list(source_from_path(path))
    records = {r.external_id: r for r in (parse_row(row) for _, row in rows)}
    assert records["e0"].gold == "a" and records["e1"].gold == "b" and records["e5"].gold is None
    assert len(records["e5"].votes) == 3
    p_chosen = [row.get("p_chosen") for _, row in rows]  # an empty CSV cell reads as absent
    assert sum(p is None for p in p_chosen) == 3  # two gold pairs and the tie-only pair
    trl_rows = [row for _, row in source_from_path(trl)]
    assert all(0.5 <= float(row["p_chosen"]) <= 1.0 for row in trl_rows)


def test_bad_label_model_options_are_errors(project, tmp_path):
    with pytest.raises(ExportFailed, match="unknown label model"):
        list(export_rows(project=project, fmt="trl", label_model="DawidSkene"))
    with pytest.raises(ExportFailed, match="trl or pairwise"):
        export_to_path(project=project, fmt="votes", path=tmp_path / "v.jsonl", label_model="mace")
    assert not (tmp_path / "v.jsonl").exists()


def test_the_command_takes_a_label_model(project, tmp_path):
    out = io.StringIO()
    path = tmp_path / "trl.jsonl"
    call_command(
        "export_preferences",
        "--project",
        "lm",
        "--format",
        "trl",
        "--label-model",
        "dawid_skene",
        "-o",
        str(path),
        "--no-progress",
        stdout=out,
    )
    assert json.loads(out.getvalue().splitlines()[-1])["rows"] == 7
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert all("p_chosen" in r for r in rows)
    with pytest.raises(CommandError):
        call_command("export_preferences", "--project", "lm", "--format", "trl", "--label-model", "em", "-o", "x")


def test_the_download_takes_a_label_model(project, client, admin_user):
    client.force_login(admin_user)
    url = reverse("project-export-download", args=["lm"])
    options = {"format": "pairwise", "file_type": "jsonl", "label_model": "glad"}
    response = client.get(url, options)
    assert response.status_code == 200
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(rows) == 10 and all("p_chosen" in r and "gold" in r for r in rows)
    assert client.get(url, {**options, "label_model": "nope"}).status_code == 400
    assert b"dawid_skene" in client.get(reverse("project-export", args=["lm"])).content


def test_a_paused_annotators_votes_do_not_label_the_export(project):
    from django.utils import timezone

    from labeling.models import Annotator, AnnotatorStanding

    # given r1 and r2, careful, and r3, who always says the opposite: 2-1 on every pair
    assert len(list(export_rows(project=project, fmt="trl", label_model="majority"))) == 7
    # when r1 is paused on the project
    r1 = Annotator.objects.get(external_id="r1")
    AnnotatorStanding.objects.create(project=project, annotator=r1, paused_at=timezone.now(), pause_reason="test")
    # then the label fit sees only r2 and r3, as a training run would: 1-1 everywhere, no pair has a label
    assert list(export_rows(project=project, fmt="trl", label_model="majority")) == []
    # and the fit of any model leaves r1 out
    rows = list(export_rows(project=project, fmt="trl", label_model="dawid_skene"))
    votes = [
        LabelVote(pair, annotator, choice)
        for pair, annotator, choice in Vote.objects.filter(project=project)
        .exclude(annotator=r1)
        .order_by("id")
        .values_list("pair_id", "annotator_id", "choice")
    ]
    gold = dict(Pair.objects.filter(project=project).exclude(gold="").values_list("id", "gold"))
    p_a = label_model_fit(votes, model="dawid_skene", gold=gold).p_a
    ids = pair_ids(project)
    assert rows
    for row in rows:
        p = p_a[ids[f"e{int(row['prompt'].split()[1][:-1])}"]]
        assert row["p_chosen"] == pytest.approx(max(p, 1 - p))
