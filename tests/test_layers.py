"""The layers hold: the engine imports no Django, and `console/` sits on top (no other app imports it).

Read from the source with `ast`, so a new module is checked without being listed here.
"""

import ast
from pathlib import Path

import pytest
from django.urls import URLResolver, get_resolver, resolve

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


def _view_classes(patterns) -> set[type]:
    found: set[type] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found |= _view_classes(pattern.url_patterns)
        elif hasattr(pattern.callback, "cls"):
            found.add(pattern.callback.cls)
    return found


def test_viewsets_write_through_explicit_actions():
    """One idiom for writes (docs/architecture.md, "Views"): explicit action methods that call a service, never
    DRF's perform_create / perform_update / perform_destroy hooks."""
    offenders = sorted(
        f"{klass.__module__}.{klass.__qualname__}.{hook}"
        for view in _view_classes(get_resolver().url_patterns)
        for klass in view.__mro__
        if not klass.__module__.startswith("rest_framework")
        for hook in ("perform_create", "perform_update", "perform_destroy")
        if hook in vars(klass)
    )
    assert offenders == []


def test_execution_endpoints_belong_to_executions():
    """Execute, a connector's executions and its stats are served by the executions app's viewset."""
    for path in (
        "/api/v1/connectors/00000000-0000-0000-0000-000000000000/execute",
        "/api/v1/connectors/00000000-0000-0000-0000-000000000000/executions/",
        "/api/v1/connectors/00000000-0000-0000-0000-000000000000/stats",
    ):
        assert resolve(path).func.cls.__module__ == "executions.connector_api"
