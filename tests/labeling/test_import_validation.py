"""Bad input gets a clear error naming the line and field, and writes nothing."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling.importing import ImportFailed, pairs_import, pairs_import_validate
from labeling.models import Annotator, Pair, Vote
from preferences.readers import ReadError, source_from_path

GOOD = {
    "prompt": "Explain tides.",
    "response_a": "The moon pulls the sea.",
    "response_b": "Magic.",
    "votes": [{"annotator": "ann-1", "choice": "a"}],
}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def with_(**changes):
    return {**GOOD, "prompt": f"prompt {sorted(changes)}", **changes}


# (name, the bad row as a dict or raw JSON text, what the message must say)
MALFORMED = [
    ("empty prompt", with_(prompt=""), "line 2: prompt is empty"),
    (
        "two blank responses",
        with_(response_a=" \n\t ", response_b=""),
        "line 2: response_b is empty, and so is the other response",
    ),
    ("identical responses", with_(response_b=GOOD["response_a"]), "line 2: response_b is identical"),
    ("missing response", {"prompt": "p", "response_a": "a"}, "line 2: response_b is missing"),
    ("NUL byte", with_(response_a="a\u0000b"), "line 2: response_a contains a NUL byte"),
    ("over the limit", with_(response_a="x" * 201), "line 2: response_a is 201 characters; the limit is 200"),
    ("bad choice", with_(votes=[{"annotator": "z", "choice": "left"}]), "line 2: votes[0].choice must be one of"),
    (
        "bad strength",
        with_(votes=[{"annotator": "z", "choice": "a", "strength": 7}]),
        "votes[0].strength must be 1, 2 or 3",
    ),
    (
        "annotator twice",
        with_(votes=[{"annotator": "z", "choice": "a"}, {"annotator": "z", "choice": "b"}]),
        "votes[1].annotator 'z' votes twice",
    ),
    (
        "unpaired surrogate",
        '{"prompt": "p\\ud800", "response_a": "a", "response_b": "b"}',
        "line 2: prompt holds an unpaired surrogate",
    ),
    ("NUL in metadata", with_(metadata={"k": "a\u0000"}), "line 2: metadata.k holds a NUL"),
    ("NUL in annotator", with_(votes=[{"annotator": "a\u0000", "choice": "a"}]), "votes[0].annotator holds a NUL"),
    ("not an object", "[1, 2]", "line 2: row must be a JSON object, got list"),
    ("not JSON", '{"prompt": ', "line 2: row is not valid JSON"),
    ("NaN", '{"prompt": "p", "chosen": "a", "rejected": "b", "margin": NaN}', "line 2: row is not valid JSON (NaN"),
]


@pytest.mark.parametrize("name, bad, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_row_fails_the_whole_file_and_writes_nothing(project, tmp_path, name, bad, expected):
    # given a good row, the bad row, and another good row
    path = write_jsonl(tmp_path / "rows.jsonl", [GOOD, bad, {**GOOD, "prompt": "another"}])
    # when
    with pytest.raises(ImportFailed) as caught:
        pairs_import(project=project, source=source_from_path(path), max_chars=200)
    # then the message names the line and the field, and nothing was written
    assert expected in caught.value.message
    assert Pair.objects.count() == 0 and Vote.objects.count() == 0
    assert not Annotator.objects.filter(external_id="ann-1").exists()


def test_row_of_no_known_shape_is_named(project, tmp_path):
    # given
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "q", "answer": "a"}])
    # when / then
    with pytest.raises(ImportFailed, match="line 1: row has neither chosen/rejected"):
        pairs_import(project=project, source=source_from_path(path))


def test_invalid_utf8_line_names_the_line(project, tmp_path):
    # given
    path = tmp_path / "rows.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"prompt": "caf\xe9"}\n')
    # when / then
    with pytest.raises(ImportFailed, match=r"line 2: row is not valid UTF-8 \(byte 0xe9"):
        pairs_import(project=project, source=source_from_path(path))
    assert Pair.objects.count() == 0


def test_hh_transcripts_without_shared_prefix_name_the_field(project, tmp_path):
    # given
    path = write_jsonl(
        tmp_path / "hh.jsonl",
        [{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: bye\n\nAssistant: go"}],
    )
    # when / then
    with pytest.raises(ImportFailed, match="line 1: rejected does not share a conversation prefix"):
        pairs_import(project=project, source=source_from_path(path))


def test_csv_with_bad_votes_cell_names_line_and_column(project, tmp_path):
    # given
    path = tmp_path / "rows.csv"
    path.write_text('prompt,response_a,response_b,votes\np,a,b,"[{""annotator"": 1,"\n', encoding="utf-8")
    # when / then
    with pytest.raises(ImportFailed, match="line 2: votes is not a valid JSON cell"):
        pairs_import(project=project, source=source_from_path(path))


def test_empty_file_is_an_error(project, tmp_path):
    # given
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    # when / then
    with pytest.raises(ImportFailed, match="found no rows"):
        pairs_import(project=project, source=source_from_path(path))


def test_skip_invalid_writes_valid_rows_and_reports_each_skipped_line(project, tmp_path):
    # given
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [GOOD, with_(prompt=""), {**GOOD, "prompt": "two"}, "not json", {**GOOD, "prompt": "three"}],
    )
    reported = []
    # when
    summary = pairs_import(project=project, source=source_from_path(path), skip_invalid=True, on_skip=reported.append)
    # then
    assert summary.as_dict() == {"created": 3, "duplicates": 0, "votes": 3, "skipped": 2}
    assert reported == ["line 2: prompt is empty", "line 4: row is not valid JSON (Expecting value at column 1)"]
    assert Pair.objects.filter(project=project).count() == 3


def test_mixed_shapes_fail_on_the_first_row_of_the_other_shape(project, tmp_path):
    # given a pairwise row, then a trl row
    path = write_jsonl(tmp_path / "rows.jsonl", [GOOD, {"prompt": "p", "chosen": "c", "rejected": "r"}])
    # when / then
    with pytest.raises(ImportFailed, match="line 2: response_a is missing"):
        pairs_import(project=project, source=source_from_path(path))


# --------------------------------------------------------------------------- #
# Property tests: nothing but the clear errors, whatever the input
# --------------------------------------------------------------------------- #
SUFFIXES = [".jsonl", ".json", ".csv", ".parquet", ".jsonl.gz", ".bin"]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from(SUFFIXES), gz=st.booleans(), skip=st.booleans())
def test_arbitrary_bytes_give_a_result_or_the_clear_error(tmp_path_factory, data, suffix, gz, skip):
    # given arbitrary bytes, sometimes gzipped, under any supported name
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(gzip.compress(data) if gz else data)
    # when
    try:
        result = pairs_import_validate(source=source_from_path(path), skip_invalid=skip)
    # then: only the importer's own errors, each with a message
    except (ImportFailed, ReadError) as exc:
        assert exc.message and "Traceback" not in exc.message
    else:
        assert result.valid + result.skipped == result.rows


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
row_keys = st.sampled_from(
    [
        "prompt",
        "response_a",
        "response_b",
        "chosen",
        "rejected",
        "votes",
        "metadata",
        "id",
        "margin",
        "annotator",
        "choice",
        "strength",
        "rationale",
        "role",
        "content",
    ]
)
rows = st.dictionaries(
    row_keys, json_values | st.lists(st.dictionaries(row_keys, json_values, max_size=4), max_size=3), max_size=7
)


@pytest.mark.django_db
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=rows, fmt=st.sampled_from(["auto", "trl", "pairwise"]))
def test_arbitrary_json_rows_are_rejected_clearly_or_stored(project, tmp_path_factory, row, fmt):
    # given one arbitrary JSON row
    path = write_jsonl(tmp_path_factory.mktemp("rows") / "row.jsonl", [row])
    # when
    try:
        summary = pairs_import(project=project, source=source_from_path(path), fmt=fmt)
    # then it is refused with a message naming line 1, or it is stored
    except ImportFailed as exc:
        assert exc.message.startswith("line 1: ")
    else:
        assert summary.created + summary.duplicates == 1


# PostgreSQL refuses what SQLite stores (NUL in text and jsonb, unpaired
# surrogates): the same property on the stricter database.
@pytest.mark.postgres
@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=rows, fmt=st.sampled_from(["auto", "trl", "pairwise"]))
def test_arbitrary_json_rows_are_rejected_clearly_or_stored_on_postgresql(project, tmp_path_factory, row, fmt):
    # given one arbitrary JSON row
    path = write_jsonl(tmp_path_factory.mktemp("rows") / "row.jsonl", [row])
    # when
    try:
        summary = pairs_import(project=project, source=source_from_path(path), fmt=fmt)
    # then
    except ImportFailed as exc:
        assert exc.message.startswith("line 1: ")
    else:
        assert summary.created + summary.duplicates == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    "bad",
    [
        '{"prompt": "p", "response_a": "a", "response_b": "b", "metadata": {"k": "\\u0000"}}',
        '{"prompt": "p", "response_a": "a", "response_b": "b", "id": "x\\u0000"}',
        '{"prompt": "p\\udfff", "response_a": "a", "response_b": "b"}',
        '{"prompt": "p", "response_a": "a", "response_b": "b", "votes": [{"annotator": "\\ud800", "choice": "a"}]}',
    ],
)
def test_rows_postgresql_cannot_store_are_refused_before_writing(project, tmp_path, bad):
    # given
    path = write_jsonl(tmp_path / "rows.jsonl", [GOOD, bad])
    # when / then
    with pytest.raises(ImportFailed, match="line 2: "):
        pairs_import(project=project, source=source_from_path(path))
    assert Pair.objects.count() == 0
