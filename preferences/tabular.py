"""How values are stored in flat files (CSV cells, parquet string columns).

The readers and the exporter both use these rules, so an export re-imports
to the same content:

- Nested values (a pair's `votes` list, its `metadata` object) are JSON
  strings in CSV, and `metadata` is a JSON string in parquet too (its keys
  vary from row to row, which a parquet schema cannot hold).
- A CSV cell that a spreadsheet would run as a formula (it starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a
  leading ``'``. To keep that reversible, a cell that already starts with
  quotes followed by such a character gets one more quote; the reader takes
  exactly one quote off such cells.
"""

from __future__ import annotations

import json
import re
from typing import Any

JSON_COLUMNS = ("votes", "metadata")
FORMULA_CHARS = "=+-@\t\r"

_NEUTRALISED = re.compile(r"'*[=+\-@\t\r]")
_RESTORABLE = re.compile(r"'+[=+\-@\t\r]")


def csv_neutralise(value: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates. See `csv_restore`."""
    return "'" + value if _NEUTRALISED.match(value) else value


def csv_restore(value: str) -> str:
    """Undo `csv_neutralise`: exactly one leading quote comes off."""
    return value[1:] if _RESTORABLE.match(value) else value


def json_cell(value: Any) -> str:
    """A nested value as one JSON string cell (compact, UTF-8 kept as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
