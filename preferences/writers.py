"""Preference rows out to files, streamed in bounded memory: JSONL (gzip too), CSV, parquet,
and `datasets` save_to_disk folders. No Django.

The exporter (labeling.exporting) builds the rows; this module only turns
rows into bytes. Nested values follow the flat-file rules of
`preferences.tabular`, which the readers undo, so an export re-imports to
the same content.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from preferences.tabular import JSON_COLUMNS, csv_neutralise, json_cell

ROW_GROUP_ROWS = 10_000


def columns_of(
    *, fmt: str, with_margin: bool = False, with_gold: bool = False, with_p_chosen: bool = False
) -> list[str]:
    """The columns of an export format's rows, in file order.

    The optional ones: trl's ``margin`` and ``p_chosen``, pairwise's ``gold``
    and ``p_chosen`` (see labeling.exporting for when each is present).
    """
    if fmt == "trl":
        return ["prompt", "chosen", "rejected"] + (["margin"] if with_margin else []) + extra_columns(with_p_chosen)
    if fmt == "pairwise":
        return ["id", "prompt", "response_a", "response_b", "votes", "metadata", "split"] + extra_columns(
            with_p_chosen, with_gold
        )
    return [
        "pair_id",
        "pair_external_id",
        "annotator",
        "choice",
        "shown_left",
        "strength",
        "rationale",
        "latency_ms",
        "created_at",
        "split",
    ]


def extra_columns(with_p_chosen: bool, with_gold: bool = False) -> list[str]:
    return (["gold"] if with_gold else []) + (["p_chosen"] if with_p_chosen else [])


def jsonl_chunks(rows: Iterable[dict]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def csv_chunks(rows: Iterable[dict], columns: list[str]) -> Iterator[bytes]:
    """CSV with a header, nested values as JSON cells, formula-like cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(key, row.get(key)) for key in columns])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows: the header alone
        yield buffer.getvalue().encode("utf-8")


def _csv_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in JSON_COLUMNS:
        return csv_neutralise(json_cell(value))
    if isinstance(value, str):
        return csv_neutralise(value)
    return str(value)


def parquet_schema(*, fmt: str, with_margin: bool = False, with_gold: bool = False, with_p_chosen: bool = False):
    import pyarrow as pa

    text = pa.string()
    if fmt == "trl":
        fields = [("prompt", text), ("chosen", text), ("rejected", text)]
        if with_margin:
            fields.append(("margin", pa.float64()))
    elif fmt == "pairwise":
        vote = pa.struct([("annotator", text), ("choice", text), ("strength", pa.int8()), ("rationale", text)])
        fields = [
            ("id", text),
            ("prompt", text),
            ("response_a", text),
            ("response_b", text),
            ("votes", pa.list_(vote)),
            ("metadata", text),
            ("split", text),
        ]
    else:
        fields = [
            ("pair_id", pa.int64()),
            ("pair_external_id", text),
            ("annotator", text),
            ("choice", text),
            ("shown_left", text),
            ("strength", pa.int8()),
            ("rationale", text),
            ("latency_ms", pa.int64()),
            ("created_at", text),
            ("split", text),
        ]
    if fmt != "votes":
        types = {"gold": text, "p_chosen": pa.float64()}
        fields += [(name, types[name]) for name in extra_columns(with_p_chosen, with_gold and fmt == "pairwise")]
    return pa.schema(fields)


def write_parquet(
    rows: Iterable[dict],
    path: Path,
    *,
    fmt: str,
    with_margin: bool = False,
    row_group_rows: int = ROW_GROUP_ROWS,
    **columns: bool,
) -> int:
    """Rows to a parquet file, one row group per `row_group_rows` rows; `columns`: with_gold, with_p_chosen."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(fmt=fmt, with_margin=with_margin, **columns)
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        group: list[dict] = []
        for row in rows:
            if fmt == "pairwise":  # metadata's keys vary by row: a JSON string column
                row = {**row, "metadata": json_cell(row["metadata"])}
            group.append(row)
            if len(group) >= row_group_rows:
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                n += len(group)
                group = []
        if group or n == 0:
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
            n += len(group)
    return n


def file_kind(path: Path) -> str:
    """What to write, from the output path's name."""
    name = path.name.lower()
    for suffix, kind in ((".jsonl.gz", "jsonl.gz"), (".jsonl", "jsonl"), (".csv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return kind
    if path.is_dir() or "." not in name:
        return "dataset"
    raise ValueError(
        f"cannot tell what to write from {path.name!r}: use .jsonl, .jsonl.gz, .csv or .parquet, "
        "or a folder name without a suffix for datasets' save_to_disk"
    )


def rows_write(rows: Iterable[dict], path: str | Path, *, fmt: str, with_margin: bool = False, **columns: bool) -> None:
    """Write rows to `path` (its kind from its name, `file_kind`) atomically: a temp name, then a rename.

    `columns` switches on optional columns (`columns_of`): with_gold, with_p_chosen.
    """
    path = Path(path)
    kind = file_kind(path)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        staged = Path(tmp) / ("data" if kind == "dataset" else path.name)
        if kind == "jsonl":
            _write_chunks(jsonl_chunks(rows), open(staged, "wb"))
        elif kind == "jsonl.gz":
            _write_chunks(jsonl_chunks(rows), gzip.open(staged, "wb", compresslevel=6))
        elif kind == "csv":
            _write_chunks(csv_chunks(rows, columns_of(fmt=fmt, with_margin=with_margin, **columns)), open(staged, "wb"))
        elif kind == "parquet":
            write_parquet(rows, staged, fmt=fmt, with_margin=with_margin, **columns)
        else:
            _save_to_disk(rows, staged, Path(tmp), fmt=fmt, with_margin=with_margin, **columns)
        _replace(staged, path)


def _write_chunks(chunks: Iterator[bytes], fh) -> None:
    with fh:
        for chunk in chunks:
            fh.write(chunk)


def _save_to_disk(
    rows: Iterator[dict], staged: Path, tmp: Path, *, fmt: str, with_margin: bool, **columns: bool
) -> int:
    """A datasets folder, built from a parquet file so memory stays bounded."""
    import datasets

    datasets.disable_progress_bars()  # the export's own progress is reported; these would be noise
    parquet = tmp / "rows.parquet"
    n = write_parquet(rows, parquet, fmt=fmt, with_margin=with_margin, **columns)
    dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(tmp / "cache"))
    dataset.save_to_disk(str(staged))
    del dataset
    return n


def _replace(staged: Path, path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    os.replace(staged, path)
