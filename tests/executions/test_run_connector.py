"""`manage.py run_connector CONNECTOR_ID --input JSON [--contact ID]` (docs/operations.md)."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from executions import dispatch
from executions.models import Execution
from tests.executions.helpers import json_reply, make_connector
from tests.factories import ContactFactory
from tests.local_server import Reply

ROOT = Path(__file__).resolve().parents[2]


def run_command(*args: str) -> tuple[list[str], int]:
    """Runs the command in this process; returns its output lines and exit code."""
    out = io.StringIO()
    try:
        call_command("run_connector", *args, stdout=out)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return out.getvalue().splitlines(), code


@pytest.fixture
def two_steps(acme, local_server):
    local_server.route("/lookup", json_reply({"id": 42, "name": "Ada"}))
    return make_connector(
        acme,
        [
            {
                "name": "lookup",
                "url": f"{local_server.url}/lookup",
                "query": {"q": "{{input.q}}"},
                "extract": {"id": "id"},
            },
            {"name": "update", "method": "POST", "url": f"{local_server.url}/update/{{{{steps.lookup.id}}}}"},
        ],
        name="Lookup and update",
        input_schema={"type": "object", "required": ["q"]},
    )


def test_success_prints_each_step_and_succeeded_last(two_steps, local_server):
    lines, code = run_command(str(two_steps.id), "--input", '{"q": "ada"}')

    execution = Execution.objects.get()
    assert code == 0
    assert lines[0] == f"Execution {execution.id} of 'Lookup and update' (version 1)"
    assert lines[1].startswith("step lookup: succeeded, HTTP 200, 1 attempt(s), ")
    assert lines[2] == '  extracted: {"id": 42}'
    assert lines[3].startswith("step update: succeeded, HTTP 200, 1 attempt(s), ")
    assert lines[-1] == "succeeded"
    assert len(lines) == 5
    assert [r.path for r in local_server.requests] == ["/lookup?q=ada", "/update/42"]
    assert execution.triggered_by == "command"


def test_failure_prints_the_error_and_failed_last_and_exits_1(two_steps, local_server):
    local_server.route("/lookup", Reply(404))

    lines, code = run_command(str(two_steps.id), "--input", '{"q": "nobody"}')

    assert code == 1
    assert lines[1].startswith("step lookup: failed, HTTP 404, 1 attempt(s), ")
    assert lines[1].endswith(" - HTTP 404")
    assert lines[2] == "step update: skipped"
    assert lines[-2] == "error: step 'lookup' failed: HTTP 404"
    assert lines[-1] == "failed"


def test_waits_for_retries_in_process(two_steps, local_server, monkeypatch):
    monkeypatch.setattr("connectors.engine.runner.backoff_delay", lambda *args, **kwargs: 0.0)
    local_server.route("/update/42", [Reply(503), Reply(200)])

    lines, code = run_command(str(two_steps.id), "--input", '{"q": "ada"}')

    assert code == 0
    assert "  waiting 0.0s before attempt 2: HTTP 503" in lines
    assert lines[-2].startswith("step update: succeeded, HTTP 200, 2 attempt(s), ")
    assert lines[-1] == "succeeded"


def test_never_goes_through_the_queue(two_steps, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: pytest.fail("run_connector enqueued"))

    with django_capture_on_commit_callbacks(execute=True):
        _lines, code = run_command(str(two_steps.id), "--input", '{"q": "ada"}')

    assert code == 0


def test_contact_is_used_and_mapped(acme, local_server):
    local_server.route("/v", json_reply({"valid": True}))
    connector = make_connector(
        acme,
        [
            {
                "name": "v",
                "url": f"{local_server.url}/v",
                "query": {"phone": "{{contact.phone}}"},
                "extract": {"ok": "valid"},
            }
        ],
        contact_mapping={"phone_valid": "{{steps.v.ok}}"},
    )
    contact = ContactFactory(workspace=acme, phone="+331")

    _lines, code = run_command(str(connector.id), "--contact", str(contact.id))

    contact.refresh_from_db()
    assert code == 0
    assert contact.phone_valid is True
    assert local_server.requests[0].path == "/v?phone=%2B331"


def test_notes_are_printed_before_the_status(acme, local_server):
    connector = make_connector(
        acme, [{"name": "v", "url": f"{local_server.url}/v"}], contact_mapping={"company": "{{input.company}}"}
    )

    lines, _code = run_command(str(connector.id))

    assert lines[-2:] == ["note: contact_mapping not applied: the execution has no contact.", "succeeded"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{not json"], "--input is not valid JSON: "),
        (["--input", "{}"], "'q' is a required property"),
    ],
)
def test_bad_input_is_a_command_error(two_steps, args, message):
    with pytest.raises(CommandError) as excinfo:
        call_command("run_connector", str(two_steps.id), *args)

    assert str(excinfo.value).startswith(message)
    assert Execution.objects.count() == 0


def test_unknown_connector_is_a_command_error(db):
    with pytest.raises(CommandError) as excinfo:
        call_command("run_connector", "00000000-0000-0000-0000-000000000000")

    assert str(excinfo.value) == (
        "No connector with id 00000000-0000-0000-0000-000000000000; list them in the admin or the API."
    )


def test_inactive_connector_is_a_command_error(two_steps):
    two_steps.is_active = False
    two_steps.save(update_fields=["is_active"])

    with pytest.raises(CommandError) as excinfo:
        call_command("run_connector", str(two_steps.id), "--input", '{"q": "x"}')

    assert str(excinfo.value) == "The connector is inactive; activate it before executing it."


# ------------------------------------------------------------------------------------------------------------
# As a real process: exit codes and the last line of standard output


def manage(*args: str) -> subprocess.CompletedProcess:
    db = settings.DATABASES["default"]
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env["DATABASE_URL"] = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["CONNECTORS_ALLOWED_PRIVATE_HOSTS"] = "127.0.0.1"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.django_db(transaction=True)
def test_process_exits_0_on_success_and_1_on_failure(acme, local_server):
    if connection.vendor != "postgresql":
        pytest.skip("the child process reaches the test database through DATABASE_URL (PostgreSQL)")
    local_server.route("/bad", Reply(500))
    good = make_connector(acme, [{"name": "ok", "url": f"{local_server.url}/ok"}])
    bad = make_connector(acme, [{"name": "bad", "url": f"{local_server.url}/bad", "retry": {"max_attempts": 1}}])

    success = manage("run_connector", str(good.id), "--input", json.dumps({"x": 1}))
    failure = manage("run_connector", str(bad.id))

    assert success.returncode == 0, success.stderr
    assert success.stdout.splitlines()[-1] == "succeeded"
    assert failure.returncode == 1, failure.stderr
    assert failure.stdout.splitlines()[-1] == "failed"
    assert [r.path for r in local_server.requests] == ["/ok", "/bad"]
