"""The import arrows, read from the source: every module imports only the layers below it.

    preferences  <-  rewardmodel.training            (neither imports Django)
    lib  <-  accounts  <-  labeling  <-  rewardmodel  <-  dashboard
    config wires them all

`preferences` sits under every Django app too, and `rewardmodel.training`
under rewardmodel and the dashboard. Imports inside functions count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("preferences", "lib", "accounts", "labeling", "rewardmodel", "dashboard", "config")
OURS = set(PACKAGES) | {"tests", "bench"}

# What each layer may import from this project (besides itself).
ALLOWED: dict[str, set[str]] = {
    "preferences": set(),
    "rewardmodel.training": {"preferences"},
    "lib": set(),
    "accounts": {"lib"},
    "labeling": {"lib", "accounts", "preferences"},
    "rewardmodel": {"lib", "accounts", "labeling", "preferences", "rewardmodel.training"},
    "dashboard": {"lib", "accounts", "labeling", "rewardmodel", "rewardmodel.training", "preferences"},
    "config": {"lib", "accounts", "labeling", "rewardmodel", "rewardmodel.training", "dashboard", "preferences"},
}
WITHOUT_DJANGO = ("preferences", "rewardmodel.training")


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to (rewardmodel.training is a layer of its own)."""
    if module == "rewardmodel.training" or module.startswith("rewardmodel.training."):
        return "rewardmodel.training"
    top = module.split(".")[0]
    return top if top in ALLOWED else None


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of everything `source` imports; `from x import y` counts as x.y.

    Relative imports are resolved against `module` (a package's __init__
    when `is_package`).
    """
    found = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def wrong_arrows(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """Imports in `source` (the text of `module`) that point the wrong way."""
    layer = layer_of(module)
    if layer is None:
        return []
    problems = []
    for line, name in imported_modules(source, module, is_package=is_package):
        target = layer_of(name)
        top = name.split(".")[0]
        if layer in WITHOUT_DJANGO and top == "django":
            problems.append(f"{module}:{line} imports {name}: {layer} must not import Django")
        if target is None or target == layer:
            if top in OURS and target is None and top not in ("tests", "bench"):
                problems.append(f"{module}:{line} imports {name}, which is in no layer")
            continue
        if target not in ALLOWED[layer]:
            problems.append(f"{module}:{line} imports {name}: {layer} may not import {target}")
    return problems


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def test_every_import_points_down_the_layers():
    problems = [
        p
        for path in source_files()
        for p in wrong_arrows(module_name(path), path.read_text(), is_package=path.name == "__init__.py")
    ]
    assert problems == [], "\n".join(problems)


def test_labeling_and_preferences_never_import_rewardmodel_or_the_dashboard():
    for package in ("labeling", "preferences", "accounts", "lib"):
        for path in (REPO / package).rglob("*.py"):
            names = [
                n
                for _, n in imported_modules(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
            ]
            assert not [n for n in names if n.split(".")[0] in ("rewardmodel", "dashboard")], path


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("labeling.views", "from dashboard import selectors\n", "labeling may not import dashboard"),
        ("labeling.views", "def f():\n    from rewardmodel.models import ModelVersion\n", "may not import rewardmodel"),
        ("preferences.formats", "import django.db\n", "must not import Django"),
        ("rewardmodel.training.data", "from rewardmodel import services\n", "may not import rewardmodel"),
        ("accounts.views", "from labeling.models import Project\n", "accounts may not import labeling"),
        ("rewardmodel.training.trainer", "from .data import Collator\n", None),
        ("dashboard.views", "from rewardmodel.models import ModelVersion\n", None),
    ],
)
def test_the_checker_catches_a_wrong_arrow(module, source, expected):
    problems = wrong_arrows(module, source)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


def test_every_preferences_module_imports_without_django_or_torch():
    modules = [module_name(p) for p in sorted((REPO / "preferences").rglob("*.py"))]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'torch', 'transformers'))\n"
        "assert not bad, bad\n"
        "print('OK', len(" + repr(modules) + "))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")
