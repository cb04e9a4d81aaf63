"""The executions app's modules import one another in one direction only:

    api / connectors.api -> services -> lifecycle -> counters, dispatch
    tasks -> runtime -> heartbeat -> lifecycle
    dispatch -> (nothing of the lifecycle: the task is sent by name, the embedded runner registered in
                 ExecutionsConfig.ready())

A cycle would make the import order matter again; these read the modules' import statements.
"""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "executions"
LIFECYCLE_MODULES = {"services", "lifecycle", "counters", "heartbeat", "runtime", "tasks", "dispatch"}


def imported_execution_modules(module: str) -> set[str]:
    tree = ast.parse((APP / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "executions":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("executions."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("executions.")}
    return found & LIFECYCLE_MODULES


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("dispatch", set()),
        ("counters", set()),
        ("lifecycle", {"counters", "dispatch"}),
        ("services", {"counters", "dispatch", "lifecycle"}),
        ("heartbeat", {"lifecycle"}),
        ("runtime", {"heartbeat", "lifecycle"}),
        ("tasks", {"lifecycle", "runtime"}),
    ],
)
def test_the_lifecycle_modules_import_downwards_only(module, allowed):
    assert imported_execution_modules(module) <= allowed
