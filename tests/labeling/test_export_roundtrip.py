"""Import -> export -> import is the identity on content and votes, in every file type."""

from __future__ import annotations

import json

import pytest

from labeling import services
from labeling.exporting import export_rows, export_to_path
from labeling.importing import pairs_import
from preferences.readers import source_from_path

TRICKY_TEXTS = [
    "=SUM(A1:A9)",
    "+1 555 0100",
    "-- a dash list",
    "@mention",
    "'=already quoted",
    "''@twice",
    'comma, "quotes" and\nnewlines',
    "unicode: naïve café 日本語 🙂",
    '[{"role": "user"}] looks like JSON',
]


def source_rows() -> list[dict]:
    rows = []
    choices = ["a", "b", "tie", "both_bad"]
    for i in range(40):
        text = TRICKY_TEXTS[i % len(TRICKY_TEXTS)]
        votes = [
            {
                "annotator": f"ann-{k}",
                "choice": choices[(i + k) % 4],
                "strength": (k % 3) + 1 if choices[(i + k) % 4] in "ab" and k else None,
                "rationale": f"{text} / reason {k}" if k == 1 else "",
            }
            for k in range(i % 4)
        ]
        rows.append(
            {
                "id": f"src-{i}" if i % 5 else None,
                "prompt": f"{text} — prompt {i}",
                "response_a": f"{text} — first answer {i}",
                "response_b": f"second answer {i}: {text}",
                "votes": votes,
                "metadata": {"source": "test", "n": i, "nested": {"list": [1, "two", None]}} if i % 3 else {},
            }
        )
    return rows


def content_and_votes(rows: list[dict]) -> set:
    """What must survive: texts, and each vote as (annotator, chosen text or tie/both_bad, strength, rationale)."""
    out = set()
    for r in rows:
        texts = {"a": r["response_a"], "b": r["response_b"]}
        votes = frozenset(
            (v["annotator"], texts.get(v["choice"], v["choice"]), v.get("strength"), v.get("rationale") or "")
            for v in r["votes"]
        )
        out.add((r["prompt"], frozenset(texts.values()), votes, json.dumps(r.get("metadata") or {}, sort_keys=True)))
    return out


@pytest.fixture
def original(project, tmp_path):
    path = tmp_path / "source.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in source_rows()), encoding="utf-8")
    summary = pairs_import(project=project, source=source_from_path(path))
    assert summary.as_dict() == {"created": 40, "duplicates": 0, "votes": 60, "skipped": 0}
    return project


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.csv", "out.parquet", "out_folder"])
def test_pairwise_export_reimports_to_the_same_content_and_votes(original, tmp_path, name):
    # given the first import's export
    path = tmp_path / name
    export_to_path(project=original, fmt="pairwise", path=path)
    # when it is imported into a new project and exported again
    copy = services.project_create(slug="copy", test_percent=original.test_percent)
    summary = pairs_import(project=copy, source=source_from_path(path))
    # then
    assert summary.as_dict() == {"created": 40, "duplicates": 0, "votes": 60, "skipped": 0}
    first = list(export_rows(project=original, fmt="pairwise"))
    second = list(export_rows(project=copy, fmt="pairwise"))
    assert second == first
    assert content_and_votes(second) == content_and_votes(source_rows())


def test_reimporting_an_export_into_its_own_project_adds_nothing(original, tmp_path):
    # given
    export_to_path(project=original, fmt="pairwise", path=tmp_path / "again.parquet")
    # when
    summary = pairs_import(project=original, source=source_from_path(tmp_path / "again.parquet"))
    # then
    assert summary.as_dict() == {"created": 0, "duplicates": 40, "votes": 0, "skipped": 0}


def test_trl_export_reimports_to_the_same_preferences(project, tmp_path):
    # given TRL rows imported (their sides get shuffled)
    rows = [{"prompt": f"{TRICKY_TEXTS[i % 9]} {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(30)]
    source = tmp_path / "trl.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs_import(project=project, source=source_from_path(source))
    # when exported as trl (csv, the lossiest type) and imported again
    export_to_path(project=project, fmt="trl", path=tmp_path / "trl.csv")
    copy = services.project_create(slug="copy")
    pairs_import(project=copy, source=source_from_path(tmp_path / "trl.csv"))
    # then
    as_set = lambda rs: {(r["prompt"], r["chosen"], r["rejected"]) for r in rs}  # noqa: E731
    assert as_set(export_rows(project=copy, fmt="trl")) == as_set(rows)


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet"])
def test_round_trip_on_postgresql(original, tmp_path, name):
    # given PostgreSQL, whose text and jsonb columns are stricter than SQLite's
    export_to_path(project=original, fmt="pairwise", path=tmp_path / name)
    copy = services.project_create(slug="copy")
    # when
    summary = pairs_import(project=copy, source=source_from_path(tmp_path / name))
    # then
    assert summary.created == 40 and summary.votes == 60
    assert content_and_votes(export_rows(project=copy, fmt="pairwise")) == content_and_votes(source_rows())


def test_app_votes_round_trip_into_their_own_project_without_doubling(original, tmp_path, annotator_user):
    # given a vote cast in the app, which exports under a pseudonym
    from labeling.models import Vote

    assignment = services.assignment_next(project=original, user=annotator_user)
    services.vote_submit(assignment_id=assignment.pk, user=annotator_user, choice="left")
    before = Vote.objects.filter(project=original).count()
    path = tmp_path / "again.jsonl"
    export_to_path(project=original, fmt="pairwise", split="all", min_votes=0, path=path)
    # when the export comes back into the same project
    summary = pairs_import(project=original, source=source_from_path(path))
    # then the pseudonym resolves to the same annotator: no vote is added
    assert summary.votes == 0
    assert Vote.objects.filter(project=original).count() == before
