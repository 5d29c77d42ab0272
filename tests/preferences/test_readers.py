"""File types -> (position, row): every reader, its line numbers, and its edge cases."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from preferences import readers
from preferences.formats import RowError, parse_row
from preferences.readers import ReadError, source_from_path

ROWS = [
    {"prompt": "p1", "response_a": "a1", "response_b": "b1", "votes": [{"annotator": "x", "choice": "a"}]},
    {"prompt": "p2\nsecond line", "response_a": "a2, with comma", "response_b": 'b2 "quoted"', "votes": []},
]


def rows_of(path, **kwargs):
    return list(source_from_path(path, **kwargs))


def test_jsonl_yields_physical_line_numbers_skipping_blank_lines(tmp_path):
    # given a JSONL file with a BOM, CRLF line ends and a blank line
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\r\n\r\n" + json.dumps(ROWS[1]).encode() + b"\r\n"
    )
    # when
    rows = rows_of(path)
    # then
    assert [pos for pos, _ in rows] == [1, 3]
    assert [row for _, row in rows] == ROWS


def test_gzipped_jsonl_is_read_by_content(tmp_path):
    # given
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)
    # when / then
    assert [row for _, row in rows_of(path)] == ROWS


def test_bad_jsonl_lines_become_row_errors_in_place(tmp_path):
    # given a bad JSON line, invalid UTF-8, NaN and an over-long line between good ones
    path = tmp_path / "rows.jsonl"
    good = json.dumps(ROWS[0]).encode()
    path.write_bytes(
        b"\n".join(
            [
                good,
                b"{not json",
                b'{"prompt": "\xff\xfe"}',
                b'{"margin": NaN}',
                b'{"x": "' + b"y" * (2 << 20) + b'"}',
                good,
            ]
        )
        + b"\n"
    )
    # when
    rows = rows_of(path, max_chars=10)  # row byte limit: 1 MiB
    # then
    assert [pos for pos, _ in rows] == [1, 2, 3, 4, 5, 6]
    errors = {pos: row for pos, row in rows if isinstance(row, RowError)}
    assert set(errors) == {2, 3, 4, 5}
    assert "not valid JSON" in errors[2].message
    assert "not valid UTF-8" in errors[3].message and "0xff" in errors[3].message
    assert "NaN is not a JSON number" in errors[4].message
    assert "longer than" in errors[5].message
    assert rows[5][1] == ROWS[0]


def test_json_array_is_streamed_item_by_item_with_start_lines(tmp_path, monkeypatch):
    # given an indented array and a read chunk far smaller than one item
    monkeypatch.setattr(readers, "_CHUNK", 7)
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS + [12345678901234567890], indent=4), encoding="utf-8")
    # when
    rows = rows_of(path)
    # then items come back whole, each with the line it starts on
    assert [row for _, row in rows] == ROWS + [12345678901234567890]
    text = path.read_text().splitlines()
    for line, _ in rows:
        assert text[line - 1].strip() in ("{", "12345678901234567890")


@pytest.mark.parametrize(
    "content, expected",
    [
        ('[{"a": 1}, {"a": 2}', "no closing"),
        ('[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
        ('[{"a": 1}] trailing', "after the end of the JSON array"),
        ('[{"a": tru}]', "not valid JSON"),
        ('\n\n[{"a": 1},\n {"a": }]', "line 4"),
    ],
)
def test_broken_json_array_is_a_read_error_naming_the_line(tmp_path, content, expected):
    # given
    path = tmp_path / "rows.json"
    path.write_text(content)
    # when / then
    with pytest.raises(ReadError, match=expected):
        rows_of(path)


def test_json_file_holding_one_object_per_line_is_read_as_jsonl(tmp_path):
    # given
    path = tmp_path / "rows.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    # when / then
    assert [row for _, row in rows_of(path)] == ROWS


def test_csv_with_bom_crlf_quoted_newlines_and_json_cells(tmp_path):
    # given a CSV as Excel writes it
    path = tmp_path / "rows.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["prompt", "response_a", "response_b", "votes", "id"])
        for _i, r in enumerate(ROWS):
            writer.writerow([r["prompt"], r["response_a"], r["response_b"], json.dumps(r["votes"]), ""])
    # when
    rows = rows_of(path)
    # then the quoted newline stays in the cell, and the record starts on its own line
    assert [pos for pos, _ in rows] == [2, 3]
    assert [row for _, row in rows] == ROWS
    assert "id" not in rows[0][1]  # an empty optional cell means absent


def test_csv_cells_restore_neutralised_formulas_and_typed_columns(tmp_path):
    # given cells as the exporter writes them
    path = tmp_path / "rows.csv"
    path.write_text("prompt,chosen,rejected,margin,annotator1\n'=1+1,'-x,''@y,2.5,2\n", encoding="utf-8")
    # when
    [(_, row)] = rows_of(path)
    # then
    assert row == {"prompt": "=1+1", "chosen": "-x", "rejected": "'@y", "margin": 2.5, "annotator1": 2}


def test_csv_row_with_more_cells_than_header_is_a_row_error(tmp_path):
    # given
    path = tmp_path / "rows.csv"
    path.write_text("prompt,chosen,rejected\np,c,r,extra\n")
    # when
    [(pos, row)] = rows_of(path)
    # then
    assert pos == 2 and isinstance(row, RowError) and "4 cells" in row.message


def test_csv_invalid_utf8_is_a_read_error_naming_the_line(tmp_path):
    # given
    path = tmp_path / "rows.csv"
    path.write_bytes(b"prompt,chosen,rejected\np,c,r\np,\xff,r\n")
    # when / then
    with pytest.raises(ReadError, match="line 3: not valid UTF-8"):
        rows_of(path)


def test_csv_field_over_the_default_csv_limit_is_read(tmp_path):
    # given a cell longer than the csv module's default 128 KiB field limit
    path = tmp_path / "rows.csv"
    path.write_text("prompt,chosen,rejected\np," + "c" * 150_000 + ",r\n")
    # when
    [(_, row)] = rows_of(path)
    # then
    assert len(row["chosen"]) == 150_000


def test_parquet_rows_decode_json_string_metadata(tmp_path):
    # given
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"prompt": "p", "metadata": '{"k": [1, 2]}'}] * 2500), path, row_group_size=1000
    )
    # when
    rows = rows_of(path)
    # then
    assert [pos for pos, _ in rows] == list(range(1, 2501))
    assert rows[-1][1]["metadata"] == {"k": [1, 2]}


def test_not_parquet_is_a_read_error(tmp_path):
    # given
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    # when / then
    with pytest.raises(ReadError, match="not a readable parquet file"):
        rows_of(path)


def test_save_to_disk_folders_single_and_split(tmp_path):
    # given a Dataset and a DatasetDict written by datasets
    import datasets

    flat = [{k: v if k != "votes" else json.dumps(v) for k, v in r.items()} for r in ROWS]
    datasets.Dataset.from_list(flat).save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(flat[:1]), "test": datasets.Dataset.from_list(flat[1:])}
    ).save_to_disk(str(tmp_path / "splits"))
    # when / then
    assert [row for _, row in rows_of(tmp_path / "single")] == ROWS
    assert [row for _, row in rows_of(tmp_path / "splits", split="test")] == ROWS[1:]
    with pytest.raises(ReadError, match="holds the splits test, train; choose one with --split"):
        rows_of(tmp_path / "splits")


def test_unknown_type_and_plain_folder_are_read_errors(tmp_path):
    # given
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    # when / then
    with pytest.raises(ReadError, match="cannot tell the type"):
        source_from_path(tmp_path / "notes.txt")
    with pytest.raises(ReadError, match="not one written by datasets' save_to_disk"):
        source_from_path(tmp_path / "folder")


def test_truncated_gzip_is_a_read_error(tmp_path):
    # given
    path = tmp_path / "rows.jsonl.gz"
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in ROWS * 500))
    path.write_bytes(data[: len(data) // 2])
    # when / then
    with pytest.raises(ReadError, match="ends early"):
        rows_of(path)


# --------------------------------------------------------------------------- #
# Gold pairs: the pairwise gold field, and trl rows marked gold
# --------------------------------------------------------------------------- #
PAIRWISE = {"prompt": "Q?", "response_a": "A", "response_b": "B"}


@pytest.mark.parametrize(("value", "gold"), [("a", "a"), ("b", "b"), (None, None), ("", None)])
def test_pairwise_gold_field_names_the_answer(value, gold):
    record = parse_row({**PAIRWISE, "gold": value, "p_chosen": 0.7}, "pairwise")
    assert record.gold == gold
    assert record.swapped().gold == {"a": "b", "b": "a"}.get(gold)


@pytest.mark.parametrize("value", ["A", "tie", "left", 1, True, ["a"]])
def test_a_bad_gold_field_is_a_row_error_naming_it(value):
    with pytest.raises(RowError) as info:
        parse_row({**PAIRWISE, "gold": value}, "pairwise")
    assert info.value.field == "gold" and "must be a or b" in str(info.value)


def test_trl_rows_marked_gold_have_chosen_as_the_answer():
    row = {"prompt": "Q?", "chosen": "good", "rejected": "bad"}
    assert parse_row(row).gold is None
    record = parse_row(row, gold=True)
    assert (record.response_a, record.gold) == ("good", "a")
    assert record.swapped().gold == "b" and record.swapped().response_b == "good"  # sides shuffled, answer follows
    with pytest.raises(RowError) as info:
        parse_row(PAIRWISE, gold=True)
    assert info.value.field == "gold"


def test_csv_gold_and_p_chosen_cells_read_back(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("prompt,response_a,response_b,gold,p_chosen\r\nQ1,A,B,b,0.25\r\nQ2,A,B,,\r\n", encoding="utf-8")
    records = [parse_row(row) for _, row in source_from_path(path)]
    assert [r.gold for r in records] == ["b", None]
