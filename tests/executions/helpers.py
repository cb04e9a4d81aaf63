"""Helpers for execution tests: connectors from plain definitions, and driving executions through the real
lifecycle (claim, run, checkpoint, retry, finish) in the test process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from connectors import services as connector_services
from connectors.models import Connector
from executions.models import Execution, Status
from executions.runtime import process_execution
from tests.factories import normalized_definition
from tests.local_server import Reply
from workspaces.models import Workspace

DEFINITION_ONLY = ("input_schema", "contact_mapping", "max_duration_seconds")


def make_connector(
    workspace: Workspace, steps: list[dict], *, name: str = "Test connector", **fields: Any
) -> Connector:
    """A connector stored as the API would store it (definition validated and normalized)."""
    definition = normalized_definition({"steps": steps, **{k: fields.pop(k) for k in DEFINITION_ONLY if k in fields}})
    return connector_services.connector_create(workspace=workspace, data={"name": name, **definition, **fields})


def execute(api, connector: Connector, input: dict | None = None, **extra: Any):
    """POST /connectors/{id}/execute; `extra` may hold `contact_id` and request headers (HTTP_...)."""
    body: dict[str, Any] = {"input": input if input is not None else {}}
    if "contact_id" in extra:
        body["contact_id"] = str(extra.pop("contact_id"))
    return api.post(f"/api/v1/connectors/{connector.id}/execute", body, format="json", **extra)


def let_retry_become_due(execution_id) -> None:
    """Time passes: a waiting retry's run_after is reached."""
    Execution.objects.filter(pk=execution_id, status=Status.QUEUED).update(run_after=timezone.now())


def run_to_end(execution_id, *, max_rounds: int = 20) -> Execution:
    """Processes the execution like a worker would, letting every waiting retry become due at once."""
    for _ in range(max_rounds):
        process_execution(execution_id)
        execution = _once_not_running(execution_id)
        if execution.status != Status.QUEUED:
            return execution
        let_retry_become_due(execution_id)
    raise AssertionError(f"execution {execution_id} did not finish in {max_rounds} rounds")


def _once_not_running(execution_id, *, timeout: float = 30.0) -> Execution:
    """The execution, once no thread runs it: in a transactional test (transaction=True) the API's on_commit
    also hands it to the embedded pool, whose thread may have claimed it before this one."""
    give_up = time.monotonic() + timeout
    while (execution := Execution.objects.get(pk=execution_id)).status == Status.RUNNING:
        assert time.monotonic() < give_up, f"execution {execution_id} still running after {timeout} s"
        time.sleep(0.05)
    return execution


def run_api(api, connector: Connector, input: dict | None = None, **extra: Any) -> dict:
    """Executes through the API, runs the execution to its end, and returns GET /executions/{id}."""
    response = execute(api, connector, input, **extra)
    assert response.status_code == 202, response.content
    run_to_end(response.json()["id"])
    detail = api.get(f"/api/v1/executions/{response.json()['id']}")
    assert detail.status_code == 200
    return detail.json()


def json_reply(payload: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json", **headers})


def require_pg_dump() -> str:
    """The pg_dump binary for the test database; skips without PostgreSQL/pg_dump (fails in CI instead)."""
    pg_dump = shutil.which("pg_dump")
    if connection.vendor != "postgresql" or pg_dump is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run this on PostgreSQL with pg_dump installed", pytrace=False)
        pytest.skip("needs PostgreSQL and pg_dump")
    return pg_dump


def database_dump() -> str:
    """`pg_dump --data-only` of the test database as text (see `require_pg_dump`)."""
    pg_dump = require_pg_dump()
    database = settings.DATABASES["default"]
    return subprocess.run(
        [
            pg_dump,
            "--data-only",
            "-h",
            database["HOST"] or "127.0.0.1",
            "-p",
            str(database["PORT"] or 5432),
            "-U",
            database["USER"] or "postgres",
            database["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
