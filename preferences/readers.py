"""File types in, row dicts out, lazily and in bounded memory.

Every reader yields ``(position, row)``: the physical line a row starts on
for text files (JSONL, JSON array, CSV), or its 1-based row number for
columnar sources (parquet, `datasets` `save_to_disk` folders, Hub streams).
`RowSource.unit` says which, so messages read "line 12" or "row 12".

Two kinds of trouble, kept apart on purpose:

- One bad row (not JSON, not UTF-8, too long, more CSV cells than the
  header) is yielded *in the row's place* as a `RowError`, so
  ``--skip-invalid`` can pass over it and the importer can name the line.
- A file that cannot be read on (truncated gzip, a broken JSON array, not
  parquet at all) raises `ReadError`, which no flag skips.

Nothing here knows row *shapes* (trl, pairwise, ...): that is
`preferences.formats.parse_row`. Nothing here touches the database.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from preferences.formats import DEFAULT_MAX_CHARS, RowError
from preferences.tabular import JSON_COLUMNS, csv_restore

FILE_TYPES = ("auto", "jsonl", "json", "csv", "parquet", "dataset")
SUFFIX_TYPES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
UPLOAD_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".csv", ".csv.gz", ".parquet")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_CHUNK = 1 << 16
_COLUMNAR_BATCH = 1000
# Parquet memory: one decoded row group, plus one batch of rows as Python objects.
PARQUET_BATCH_BYTES = 16 * 1024 * 1024
PARQUET_MAX_ROW_GROUP_BYTES = 1024 * 1024 * 1024
# CSV cells that may hold a pandalm label or a TRL margin as text.
_INT_COLUMNS = ("annotator1", "annotator2", "annotator3")
_OPTIONAL_COLUMNS = ("id", "idx", "margin", "gold", "p_chosen", *JSON_COLUMNS, *_INT_COLUMNS)
_MESSAGE_COLUMNS = ("prompt", "chosen", "rejected")

Rows = Iterator[tuple[int, Any]]


class ReadError(Exception):
    """The source as a whole cannot be read on. `message` says where and why."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class RowSource:
    """The rows of one file, folder or Hub split.

    Iterating it opens the source afresh, so the importer can read it twice
    (once to validate, once to write) without holding it in memory.
    """

    description: str
    unit: str  # "line" or "row"
    open_rows: Callable[[], Rows]

    def __iter__(self) -> Rows:
        return _guarded(self.open_rows(), self.unit)


def row_byte_limit(max_chars: int) -> int:
    """The longest line (or JSON array item) read into memory.

    Room for three texts at the character limit written as 12-byte JSON
    escapes, plus votes and metadata; anything longer cannot be valid.
    """
    return max(1 << 20, 64 * max_chars)


# --------------------------------------------------------------------------- #
# Opening sources
# --------------------------------------------------------------------------- #
def source_from_path(
    path: str | Path, *, file_type: str = "auto", split: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> RowSource:
    """A `RowSource` for a local file or `save_to_disk` folder."""
    path = Path(path)
    if not path.exists():
        raise ReadError(f"{path}: no such file or folder")
    kind = detect_file_type(path) if file_type == "auto" else file_type
    if kind not in FILE_TYPES:
        raise ReadError(f"unknown file type {kind!r}; expected one of {', '.join(FILE_TYPES)}")
    if kind == "dataset":
        return RowSource(str(path), "row", lambda: _dataset_rows(path, split))
    if split is not None:
        raise ReadError("--split applies to --hf and to save_to_disk folders, not to a single file")
    limit = row_byte_limit(max_chars)
    if kind == "json" and _json_layout(path) == "jsonl":
        kind = "jsonl"  # a .json file holding one object per line, as many Hub datasets do
    readers: dict[str, Callable[[], Rows]] = {
        "jsonl": lambda: _jsonl_rows(path, limit),
        "json": lambda: _json_array_rows(path, limit),
        "csv": lambda: _csv_rows(path, limit),
        "parquet": lambda: _parquet_rows(path),
    }
    unit = "row" if kind == "parquet" else "line"
    return RowSource(str(path), unit, readers[kind])


def source_from_hub(name: str, *, split: str) -> RowSource:
    """A Hugging Face Hub dataset split, streamed (nothing is downloaded whole)."""

    def rows() -> Rows:
        import datasets

        try:
            stream = datasets.load_dataset(name, split=split, streaming=True)
            for n, row in enumerate(stream, start=1):
                yield n, _from_columnar(row)
        except Exception as exc:
            raise ReadError(f"could not load {name!r} (split {split!r}) from the Hugging Face Hub: {exc}") from None

    return RowSource(f"{name} [{split}] on the Hugging Face Hub", "row", rows)


def detect_file_type(path: Path) -> str:
    """jsonl, json, csv, parquet or dataset: by name first, else by the first bytes."""
    if path.is_dir():
        if any((path / marker).exists() for marker in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "dataset"
        raise ReadError(
            f"{path} is a folder, but not one written by datasets' save_to_disk "
            "(no dataset_info.json or dataset_dict.json in it)"
        )
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, kind in SUFFIX_TYPES.items():
        if name.endswith(suffix):
            return kind
    head = _peek(path, 4)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    layout = _json_layout(path)
    if layout is not None:
        return layout
    raise ReadError(
        f"cannot tell the type of {path.name} from its name or content; "
        "use .jsonl, .jsonl.gz, .json, .csv or .parquet, or a save_to_disk folder"
    )


def _peek(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def is_gzip(path: Path) -> bool:
    """Whether the file is gzip, told by its content, not its name."""
    return _peek(path, 2) == GZIP_MAGIC


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip (told by content, not name)."""
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _json_layout(path: Path) -> str | None:
    """'json' when the first character is '[', 'jsonl' when it is '{', else None."""
    try:
        with _open_binary(path) as fh:
            head = fh.read(_CHUNK)
    except (OSError, EOFError, zlib.error):
        return None
    head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl"
    return None


def _guarded(rows: Rows, unit: str) -> Rows:
    """Turn low-level failures part-way through a file into one clear ReadError."""
    last = 0
    try:
        for position, row in rows:
            last = position
            yield position, row
    except ReadError:
        raise
    except (OSError, EOFError, zlib.error, csv.Error, UnicodeError, ValueError, RecursionError) as exc:
        where = f"after {unit} {last}" if last else "at the start"
        raise ReadError(f"cannot read the file {where}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "it ends early (truncated or incomplete compressed data)"
    if isinstance(exc, RecursionError):
        return "values nest too deeply"
    text = str(exc) or type(exc).__name__
    return text[:300]


# --------------------------------------------------------------------------- #
# JSON
# --------------------------------------------------------------------------- #
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every row: json.loads with keyword arguments would build a
# new decoder per call. NaN and Infinity are refused because neither the
# JSON columns of SQLite nor PostgreSQL's jsonb can store them.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_json_text(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return RowError("row", f"is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return RowError("row", "is not valid JSON (values nest too deeply)")
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        return RowError("row", f"is not valid JSON ({exc})")


def _bounded_lines(fh: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per physical line; None for a line over `limit` bytes (skipped)."""
    line_no = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while True:  # read past the rest of the over-long line without keeping it
                rest = fh.readline(_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            yield line_no, None
            continue
        yield line_no, raw


def _jsonl_rows(path: Path, limit: int) -> Rows:
    with _open_binary(path) as fh:
        for line_no, raw in _bounded_lines(fh, limit):
            if raw is None:
                yield line_no, RowError("row", f"is longer than {limit:,} bytes")
                continue
            if line_no == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    line_no,
                    RowError("row", f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"),
                )
                continue
            yield line_no, _decode_json_text(text)


def _json_array_rows(path: Path, limit: int) -> Rows:
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        yield from _JsonArrayScanner(text, limit).items()


class _JsonArrayScanner:
    """Items of a top-level JSON array, decoded one at a time from a text stream.

    Memory holds one item plus a read chunk. A syntax error inside the array
    is a `ReadError`: unlike JSONL, there is no next line to resume at.
    """

    def __init__(self, fh: IO[str], limit: int):
        self.fh = fh
        self.limit = limit
        self.buf = ""
        self.pos = 0
        self.first_line = 1  # the line that buf[0] is on
        self.eof = False

    def line(self, pos: int | None = None) -> int:
        return self.first_line + self.buf.count("\n", 0, self.pos if pos is None else pos)

    def _more(self) -> bool:
        """Append the next chunk, dropping text already consumed. False at end of file."""
        if self.eof:
            return False
        if self.pos:
            self.first_line += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        # Reading as much again as is buffered keeps re-decoding a long item linear overall.
        try:
            chunk = self.fh.read(max(_CHUNK, len(self.buf)))
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"line {self.line(len(self.buf))} or just after: not valid UTF-8 "
                f"(byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8"
            ) from None
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _next_char(self) -> str:
        """The next non-blank character ('' at end of file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def items(self) -> Rows:
        if self._next_char() != "[":
            raise ReadError(f"line {self.line()}: expected a JSON array starting with '['")
        self.pos += 1
        if self._next_char() == "]":
            self.pos += 1
            self._expect_end()
            return
        while True:
            if self._next_char() == "":
                raise ReadError(f"line {self.line()}: the file ends inside the JSON array (no closing ']')")
            start = self.line()
            yield start, self._item(start)
            c = self._next_char()
            if c == ",":
                self.pos += 1
                continue
            if c == "]":
                self.pos += 1
                self._expect_end()
                return
            if c == "":
                raise ReadError(f"line {self.line()}: the file ends inside the JSON array (no closing ']')")
            raise ReadError(f"line {self.line()}: expected ',' or ']' after the array item that starts on line {start}")

    def _item(self, start: int) -> Any:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                error_line = self.first_line + exc.lineno - 1  # before _more() moves first_line
                if len(self.buf) - self.pos > self.limit:
                    raise ReadError(f"line {start}: an array item is longer than {self.limit:,} characters") from None
                if self._more():
                    continue  # most likely the item is cut at the end of the buffer
                raise ReadError(f"line {error_line}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise ReadError(f"line {start}: values nest too deeply") from None
            except ValueError as exc:
                raise ReadError(f"line {start}: not valid JSON ({exc})") from None
            if end == len(self.buf) and self._more():
                continue  # a bare number may go on in the next chunk
            self.pos = end
            return value

    def _expect_end(self) -> None:
        if self._next_char() != "":
            raise ReadError(f"line {self.line()}: unexpected text after the end of the JSON array")


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
def _csv_rows(path: Path, limit: int) -> Rows:
    """CSV with a header row, UTF-8 (a BOM is fine), any line ends, quoted newlines."""
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)  # the default (128 KiB) is below the text limit
    with _open_binary(path) as fh:
        physical = 0

        def lines() -> Iterator[str]:
            nonlocal physical
            for line_no, raw in _bounded_lines(fh, limit):
                physical = line_no
                if raw is None:
                    raise ReadError(f"line {line_no}: longer than {limit:,} bytes")
                if line_no == 1:
                    raw = raw.removeprefix(codecs.BOM_UTF8)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ReadError(
                        f"line {line_no}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                        f"{exc.start + 1}); save the file as UTF-8"
                    ) from None

        reader = csv.reader(lines(), strict=True)
        header: list[str] | None = None
        record_end = 0
        try:
            for values in reader:
                start, record_end = record_end + 1, reader.line_num
                if not values or values == [""]:
                    continue
                if header is None:
                    header = _csv_header(values, start)
                    continue
                if len(values) > len(header):
                    yield start, RowError("row", f"has {len(values)} cells but the header has {len(header)} columns")
                    continue
                yield start, _from_csv_cells(dict(zip(header, values)))
        except csv.Error as exc:
            raise ReadError(f"line {physical}: not valid CSV ({exc})") from None


def _csv_header(values: list[str], line: int) -> list[str]:
    header = [v.strip() for v in values]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise ReadError(f"line {line}: the header row has an empty or repeated column name")
    return header


def _from_csv_cells(row: dict[str, str]) -> dict[str, Any] | RowError:
    """CSV cells (all text) back to the values the row shapes expect."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        value = csv_restore(value)
        if key in _OPTIONAL_COLUMNS and value.strip() == "":
            continue  # an empty optional cell means "absent"
        if key in JSON_COLUMNS:
            decoded = _decode_json_text(value)
            if isinstance(decoded, RowError):
                return RowError(key, decoded.message.replace("is not valid JSON", "is not a valid JSON cell"))
            out[key] = decoded
        elif key in _INT_COLUMNS and value.strip().isdigit():
            out[key] = int(value)
        elif key == "margin":
            out[key] = _number_or_text(value)
        elif key in _MESSAGE_COLUMNS and value.lstrip().startswith("[{"):
            out[key] = _messages_or_text(value)
        else:
            out[key] = value
    return out


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value  # parse_row names the field: "margin must be a number"


def _messages_or_text(value: str) -> list | str:
    """A conversational cell ([{role, content}, ...] as JSON), or the text itself."""
    decoded = _decode_json_text(value)
    if isinstance(decoded, list) and all(isinstance(m, dict) and "role" in m for m in decoded):
        return decoded
    return value


# --------------------------------------------------------------------------- #
# Columnar: parquet and datasets
# --------------------------------------------------------------------------- #
def _from_columnar(row: dict[str, Any]) -> dict[str, Any] | RowError:
    """Columns that hold nested values as JSON strings (see preferences.tabular)."""
    for key in JSON_COLUMNS:
        value = row.get(key)
        if isinstance(value, str):
            decoded = _decode_json_text(value) if value.strip() else None
            if isinstance(decoded, RowError):
                return RowError(key, decoded.message)
            row[key] = decoded
    return row


def parquet_batch_rows(*, row_group_bytes: int, row_group_rows: int) -> int:
    """Rows to turn into Python objects at once, so a batch holds about PARQUET_BATCH_BYTES of text."""
    per_row = max(1, row_group_bytes // max(1, row_group_rows))
    return max(1, min(_COLUMNAR_BATCH, PARQUET_BATCH_BYTES // per_row))


def _parquet_rows(path: Path) -> Rows:
    """Row group by row group, in batches sized by bytes rather than rows.

    pyarrow decodes a whole row group before it yields any batch of it, so
    memory holds one decoded row group (refused over
    PARQUET_MAX_ROW_GROUP_BYTES) plus one batch of Python rows (about
    PARQUET_BATCH_BYTES, however long the texts are).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    try:
        parquet = pq.ParquetFile(path, buffer_size=_CHUNK, pre_buffer=False)
        meta = parquet.metadata
        for group in range(meta.num_row_groups):
            info = meta.row_group(group)
            if info.total_byte_size > PARQUET_MAX_ROW_GROUP_BYTES:
                raise ReadError(
                    f"row group {group + 1} decodes to {info.total_byte_size / 2**20:,.0f} MB, over the "
                    f"{PARQUET_MAX_ROW_GROUP_BYTES / 2**20:,.0f} MB read at once; write the file with smaller row "
                    "groups (pyarrow's row_group_size) or as JSONL"
                )
            size = parquet_batch_rows(row_group_bytes=info.total_byte_size, row_group_rows=info.num_rows)
            for batch in parquet.iter_batches(batch_size=size, row_groups=[group], use_threads=False):
                for row in batch.to_pylist():
                    n += 1
                    yield n, _from_columnar(row)
    except pa.ArrowException as exc:
        where = f"after row {n}" if n else "at the start"
        raise ReadError(f"not a readable parquet file ({where}): {_describe(exc)}") from None


def _dataset_rows(path: Path, split: str | None) -> Rows:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise ReadError(f"{path}: not a readable save_to_disk folder ({_describe(exc)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _pick_split(loaded, split, path)
    elif split is not None:
        raise ReadError(f"{path} holds a single dataset, not splits; leave out --split")
    n = 0
    for batch in loaded.iter(batch_size=_COLUMNAR_BATCH):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys)):
            n += 1
            yield n, _from_columnar(dict(zip(keys, values)))


def _pick_split(splits, split: str | None, path: Path):
    names = sorted(splits)
    if split is None and len(names) == 1:
        return splits[names[0]]
    if split not in splits:
        raise ReadError(f"{path} holds the splits {', '.join(names)}; choose one with --split")
    return splits[split]
