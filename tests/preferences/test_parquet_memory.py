"""Parquet is read a row group at a time, in batches sized by bytes: memory stays bounded."""

from __future__ import annotations

import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preferences import readers
from preferences.readers import ReadError, parquet_batch_rows, source_from_path


def write_long_rows(path, *, rows: int, chars: int, row_group: int) -> None:
    texts = [f"{i:06d}" + "x" * chars for i in range(rows)]
    table = pa.table({"prompt": [f"p{i}" for i in range(rows)], "response_a": texts, "response_b": texts[::-1]})
    pq.write_table(table, path, row_group_size=row_group, use_dictionary=False)


def peak_python_bytes_while_reading(path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in source_from_path(path))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_long_rows_are_converted_a_few_at_a_time(tmp_path, monkeypatch):
    # given 300 rows of ~200 KB each (60 MB of text), in row groups of 100 rows (20 MB each)
    path = tmp_path / "long.parquet"
    write_long_rows(path, rows=300, chars=100_000, row_group=100)
    # when read with a 1 MB batch budget
    monkeypatch.setattr(readers, "PARQUET_BATCH_BYTES", 1 << 20)
    count, peak = peak_python_bytes_while_reading(path)
    # then every row comes out, and Python never held more than a few batches of rows at once
    # (1,000-row batches held a whole 20 MB row group of Python strings)
    assert count == 300
    assert peak < 8 * (1 << 20), f"peak {peak / 2**20:.1f} MB"


def test_batch_size_follows_the_row_size():
    assert parquet_batch_rows(row_group_bytes=100 * 1000, row_group_rows=1000) == 1000  # short rows: the row cap
    assert parquet_batch_rows(row_group_bytes=20 << 20, row_group_rows=100) == (16 << 20) // ((20 << 20) // 100)
    assert parquet_batch_rows(row_group_bytes=1 << 30, row_group_rows=1) == 1


def test_a_row_group_too_large_to_read_at_once_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "big-groups.parquet"
    write_long_rows(path, rows=20, chars=50_000, row_group=20)
    monkeypatch.setattr(readers, "PARQUET_MAX_ROW_GROUP_BYTES", 1 << 20)
    with pytest.raises(ReadError, match="row group 1 decodes to 2 MB.*smaller row groups"):
        list(source_from_path(path))
