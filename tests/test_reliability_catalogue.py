"""docs/reliability.md names a test for every failure case: each one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "reliability.md"


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(test file, test name or None) for every `path.py::test` or bare `path.py` in the tables.

    A bare `::test_x` continues the file named before it in the same cell.
    """
    found = []
    for cell in re.findall(r"\|([^|\n]*`[^|\n]*\.py[^|\n]*)\|?\s*$", text, flags=re.M):
        current = None
        for ref in re.findall(r"`([^`]+)`", cell):
            path, _, name = ref.partition("::")
            if path.endswith(".py"):
                current = path
            elif not path and current:
                path = current
            else:
                continue
            found.append((path, name or None))
    return found


def test_every_test_the_catalogue_names_exists():
    refs = named_tests(CATALOGUE.read_text())
    assert len(refs) > 50
    missing = []
    for path, name in refs:
        file = ROOT / "tests" / path
        if not file.exists():
            missing.append(path)
            continue
        if name is None:
            continue
        tree = ast.parse(file.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
