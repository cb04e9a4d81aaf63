"""The layers hold: the engine imports no Django, and `console/` sits on top (no other app imports it).

Read from the source with `ast`, so a new module is checked without being listed here.
"""

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
APPS = (
    "core",
    "workspaces",
    "connectors",
    "executions",
    "credentials",
    "templates_market",
    "contacts",
    "triggers",
    "webhooks",
    "batches",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_of(package: str) -> list[Path]:
    return sorted(path for path in (PROJECT / package).rglob("*.py") if "migrations" not in path.parts)


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_the_console(app):
    importing = [
        str(path.relative_to(PROJECT))
        for path in modules_of(app)
        if any(name == "console" or name.startswith("console.") for name in imported_modules(path))
    ]

    assert importing == []


def test_the_engine_imports_no_django():
    importing = [
        str(path.relative_to(PROJECT))
        for path in modules_of("connectors/engine")
        if any(name == "django" or name.startswith(("django.", "rest_framework")) for name in imported_modules(path))
    ]

    assert importing == []
