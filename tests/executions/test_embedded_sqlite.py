"""Executions end to end in the embedded set-up (bin/serve's settings: DJANGO_DEBUG=true, SQLite, no broker,
the in-process pool).

The lifecycle has a second dialect for databases other than PostgreSQL: the checkpoint as a transaction that
starts with the guarded UPDATE, and the daily rollup as UPDATE-then-INSERT. These tests drive real executions
through `manage.py runserver` on a throw-away SQLite file, so those branches run as a user of bin/serve runs
them: the steps are checkpointed in order, a later step reads an earlier one's output, and the counters and
the daily rollup count each execution once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.executions.helpers import json_reply
from tests.local_server import LocalServer, Reply
from tests.test_setup import PROJECT, START_UP_SECONDS, clean_env, free_port, manage

FINISH_SECONDS = 60
EMAIL, PASSWORD = "ops@embedded.test", "Corr3ct-horse-battery"


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.headers: dict[str, str] = {}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def finished(self, execution_id: str) -> dict:
        """The execution once it has a final status (polled; the in-process pool runs it meanwhile)."""
        give_up = time.monotonic() + FINISH_SECONDS
        while True:
            status, execution = self.call("GET", f"/api/v1/executions/{execution_id}")
            assert status == 200, execution
            if execution["status"] not in ("queued", "running"):
                return execution
            assert time.monotonic() < give_up, f"execution still {execution['status']} after {FINISH_SECONDS} s"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def target() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(tmp_path_factory, target) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp("embedded-executions")
    env = clean_env(workdir / "db.sqlite3", DJANGO_DEBUG="true", CONNECTORS_ALLOWED_PRIVATE_HOSTS="127.0.0.1")
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    created = manage("create_workspace", "Embedded", "--owner", EMAIL, "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    workspace_id = created.stdout.strip().splitlines()[-1]

    port = free_port()
    log_path = workdir / "runserver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = Api(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_UP_SECONDS
        while True:
            assert process.poll() is None, f"runserver exited early:\n{log_path.read_text()}"
            try:
                if client.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"/healthz not 200 within {START_UP_SECONDS} s"
            time.sleep(0.25)
        status, tokens = client.call("POST", "/api/v1/auth/token", {"email": EMAIL, "password": PASSWORD})
        assert status == 200, tokens
        client.headers = {"Authorization": f"Bearer {tokens['access']}", "X-Workspace-ID": workspace_id}
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def create_connector(api: Api, name: str, steps: list[dict]) -> str:
    status, connector = api.call("POST", "/api/v1/connectors", {"name": name, "steps": steps})
    assert status == 201, connector
    return connector["id"]


def test_a_chained_execution_checkpoints_every_step_and_counts_once(api, target):
    target.route("/lookup", json_reply({"id": 42}))
    target.route("/detail", json_reply({"name": "forty-two"}))
    connector_id = create_connector(
        api,
        "Chain",
        [
            {"name": "lookup", "url": f"{target.url}/lookup", "extract": {"id": "id"}},
            {"name": "detail", "url": f"{target.url}/detail?id={{{{steps.lookup.id}}}}", "extract": {"name": "name"}},
        ],
    )

    status, accepted = api.call("POST", f"/api/v1/connectors/{connector_id}/execute", {"input": {}})
    assert status == 202, accepted
    execution = api.finished(accepted["id"])

    assert execution["status"] == "succeeded", execution
    assert [(step["name"], step["status"]) for step in execution["steps"]] == [
        ("lookup", "succeeded"),
        ("detail", "succeeded"),
    ]
    assert execution["output"] == {"lookup": {"id": 42}, "detail": {"name": "forty-two"}}
    assert "/detail?id=42" in [request.path for request in target.requests]
    status, stats = api.call("GET", f"/api/v1/connectors/{connector_id}/stats")
    assert status == 200
    assert (stats["total_executions"], stats["successful_executions"], stats["failed_executions"]) == (1, 1, 0)
    today = datetime.now(UTC).date().isoformat()
    assert [day for day in stats["daily"] if day["date"] == today] == [{"date": today, "succeeded": 1, "failed": 0}]


def test_a_failed_step_skips_the_rest_and_the_rollup_counts_the_failure(api, target):
    target.route("/broken", Reply(404, body=b"gone"))
    connector_id = create_connector(
        api,
        "Broken",
        [
            {"name": "first", "url": f"{target.url}/broken"},
            {"name": "second", "url": f"{target.url}/never"},
        ],
    )

    for _ in range(2):
        status, accepted = api.call("POST", f"/api/v1/connectors/{connector_id}/execute", {"input": {}})
        assert status == 202, accepted
        execution = api.finished(accepted["id"])
        assert execution["status"] == "failed"
        assert [(step["name"], step["status"]) for step in execution["steps"]] == [
            ("first", "failed"),
            ("second", "skipped"),
        ]

    assert "/never" not in [request.path for request in target.requests]
    status, stats = api.call("GET", f"/api/v1/connectors/{connector_id}/stats")
    assert (stats["total_executions"], stats["successful_executions"], stats["failed_executions"]) == (2, 0, 2)
    today = datetime.now(UTC).date().isoformat()
    assert [day for day in stats["daily"] if day["date"] == today] == [{"date": today, "succeeded": 0, "failed": 2}]
