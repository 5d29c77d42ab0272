"""A pair with one empty response is data: imported, shown as "(empty response)", trained on."""

from __future__ import annotations

import json

import pytest

from labeling.importing import ImportFailed, pairs_import
from labeling.models import Pair
from preferences.formats import RowError, parse_row
from preferences.readers import source_from_path


@pytest.mark.parametrize(
    "row, fmt",
    [
        (
            {
                "chosen": "\n\nHuman: where is it?\n\nAssistant: ",
                "rejected": "\n\nHuman: where is it?\n\nAssistant: Here.",
            },
            "trl",
        ),
        ({"prompt": "p", "chosen": "Fine.", "rejected": "   \n"}, "trl"),
        ({"prompt": "p", "response_a": "", "response_b": "b"}, "pairwise"),
        ({"instruction": "i", "response1": "r", "response2": " ", "annotator1": 1}, "pandalm"),
        (
            {
                "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}],
                "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            },
            "trl",
        ),
    ],
)
def test_one_empty_or_blank_response_is_a_valid_pair(row, fmt):
    record = parse_row(row, fmt)
    assert "" in (record.response_a, record.response_b)
    assert record.response_a != record.response_b


@pytest.mark.parametrize(
    "row, message",
    [
        ({"prompt": "p", "response_a": "", "response_b": " \t"}, "response_b is empty, and so is the other response"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "rejected is identical to the other response"),
        ({"prompt": " ", "response_a": "a", "response_b": "b"}, "prompt is empty"),
        ({"prompt": "p", "response_a": "a"}, "response_b is missing"),
    ],
)
def test_only_two_empty_or_identical_responses_or_no_prompt_are_invalid(row, message):
    with pytest.raises(RowError) as caught:
        parse_row(row)
    assert message == f"{caught.value.field} {caught.value.message}"[: len(message)]


def test_an_empty_response_is_imported_and_shown_as_such(client, project, annotator_user, tmp_path):
    # given a file with one pair whose second response is blank
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"prompt": "Say something.", "response_a": "Something.", "response_b": "  "}) + "\n")
    # when imported with the defaults
    summary = pairs_import(project=project, source=source_from_path(path))
    # then it is stored, its empty side as ""
    assert summary.created == 1 and summary.skipped == 0
    pair = Pair.objects.get(project=project)
    assert pair.response_b == ""
    # and the labeling page says "(empty response)" on that side
    client.force_login(annotator_user)
    page = client.get(f"/p/{project.slug}/label/").content.decode()
    assert page.count("(empty response)") == 1 and "Something." in page


def test_a_file_whose_only_fault_is_two_empty_responses_is_refused_with_the_count(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"prompt": f"p{i}", "response_a": "a", "response_b": ""} for i in range(3)]
    rows.append({"prompt": "p9", "response_a": "", "response_b": ""})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ImportFailed) as caught:
        pairs_import(project=project, source=source_from_path(path))
    assert caught.value.invalid_rows == 1 and "1 of 4 rows are invalid" in caught.value.message
    assert not Pair.objects.exists()
