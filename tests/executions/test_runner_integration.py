"""Executions end to end in the test process: execute API -> process_execution (as a worker) -> the stored
execution as the API shows it. Targets are real servers on 127.0.0.1 (httpbin and tests.local_server)."""

import base64
import hashlib
import json

import pytest

from contacts.models import Contact
from credentials.services import credential_upsert
from executions import services
from executions.models import Execution, Status
from tests.executions.helpers import execute, json_reply, make_connector, run_api, run_to_end
from tests.factories import ContactFactory
from tests.local_server import Reply

TOKEN = "sk-live-7Hq2ZpW9xK"


def test_chain_of_three_steps_passes_values_and_shows_every_step(alice_api, acme, httpbin):
    connector = make_connector(
        acme,
        [
            {
                "name": "create",
                "method": "POST",
                "url": f"{httpbin.url}/anything/orders",
                "body_type": "json",
                "body": {"order": {"id": "o-{{input.n}}", "qty": "{{input.n}}"}},
                "extract": {"order_id": "json.order.id", "qty": "json.order.qty"},
            },
            {
                "name": "tag",
                "url": f"{httpbin.url}/response-headers",
                "query": {"X-Tag": "tag-for-{{steps.create.order_id}}"},
            },
            {
                "name": "confirm",
                "method": "PUT",
                "url": f"{httpbin.url}/anything/orders/{{{{steps.create.order_id}}}}",
                "headers": {"X-Tag": "{{steps.tag.response.headers.X-Tag}}"},
                "extract": {"tag": "headers.X-Tag", "method": "method"},
            },
        ],
    )

    execution = run_api(alice_api, connector, {"n": 3})

    assert execution["status"] == "succeeded"
    assert execution["error"] is None
    assert execution["output"] == {
        "create": {"order_id": "o-3", "qty": 3},
        "tag": {},
        "confirm": {"tag": "tag-for-o-3", "method": "PUT"},
    }
    assert [(s["name"], s["status"], s["attempts"]) for s in execution["steps"]] == [
        ("create", "succeeded", 1),
        ("tag", "succeeded", 1),
        ("confirm", "succeeded", 1),
    ]
    assert execution["steps"][2]["request"]["url"] == f"{httpbin.url}/anything/orders/o-3"
    assert execution["steps"][0]["request"]["body"] == '{"order":{"id":"o-3","qty":3}}'


def test_run_uses_the_definition_accepted_at_execute_time(alice_api, acme, local_server):
    connector = make_connector(acme, [{"name": "one", "url": f"{local_server.url}/v1"}])
    execution_id = execute(alice_api, connector).json()["id"]
    response = alice_api.patch(
        f"/api/v1/connectors/{connector.id}",
        {"steps": [{"name": "one", "url": f"{local_server.url}/v2"}]},
        format="json",
    )
    assert response.json()["version"] == 2

    run_to_end(execution_id)

    assert [r.path for r in local_server.requests] == ["/v1"]
    assert Execution.objects.get(pk=execution_id).connector_version == 1


def test_secrets_never_appear_in_the_stored_execution(alice_api, acme, httpbin):
    credential_upsert(workspace=acme, service_name="crm", fields={"token": TOKEN})
    connector = make_connector(
        acme,
        [
            {
                "name": "echo",
                "method": "POST",
                "url": f"{httpbin.url}/anything",
                "query": {"sig": "{{workspace.crm.token | urlencode}}"},
                "headers": {"X-Echo": "{{workspace.crm.token}}", "X-Echo-B64": "{{workspace.crm.token | base64}}"},
                "auth": {"type": "bearer", "token": "{{workspace.crm.token}}"},
                "body_type": "json",
                "body": {"secret": "{{workspace.crm.token}}", "plain": "visible"},
                "extract": {"auth": "headers.Authorization", "echo": "headers.X-Echo", "plain": "json.plain"},
            },
            {"name": "fail", "url": f"{httpbin.url}/status/400?t={{{{workspace.crm.token}}}}"},
        ],
    )

    execution = run_api(alice_api, connector)

    serialized = json.dumps(execution)
    assert TOKEN not in serialized
    assert base64.b64encode(TOKEN.encode()).decode() not in serialized
    assert execution["output"]["echo"] == {"auth": "Bearer [REDACTED]", "echo": "[REDACTED]", "plain": "visible"}
    assert execution["steps"][0]["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert execution["steps"][0]["response"]["body"]["json"] == {"secret": "[REDACTED]", "plain": "visible"}
    assert execution["steps"][1]["request"]["url"] == f"{httpbin.url}/status/400?t=[REDACTED]"
    assert execution["error"] == "step 'fail' failed: HTTP 400"


def test_credentials_are_read_from_the_executions_workspace_only(alice_api, acme, globex, local_server):
    credential_upsert(workspace=globex, service_name="crm", fields={"token": TOKEN})
    connector = make_connector(
        acme,
        [{"name": "call", "url": f"{local_server.url}/x", "auth": {"type": "bearer", "token": "{{workspace.crm}}"}}],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["steps"][0]["error"] == (
        "the workspace has no credential for service 'crm'; add it under /workspace/credentials (referenced in auth)"
    )
    assert local_server.hits == 0


def test_missing_credential_fails_the_execution_naming_the_service(alice_api, acme, local_server):
    connector = make_connector(
        acme,
        [
            {
                "name": "validate",
                "url": f"{local_server.url}/validate",
                "auth": {
                    "type": "api_key",
                    "in": "query",
                    "name": "access_key",
                    "value": "{{workspace.numverify.key}}",
                },
            },
            {"name": "after", "url": f"{local_server.url}/after"},
        ],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == (
        "step 'validate' failed: the workspace has no credential for service 'numverify'; "
        "add it under /workspace/credentials (referenced in auth)"
    )
    assert [(s["name"], s["status"]) for s in execution["steps"]] == [("validate", "failed"), ("after", "skipped")]
    assert local_server.hits == 0


def test_unresolved_reference_fails_before_any_request(alice_api, acme, local_server):
    connector = make_connector(
        acme,
        [{"name": "validate", "url": f"{local_server.url}/validate", "query": {"number": "{{input.phone}}"}}],
    )

    execution = run_api(alice_api, connector, {"name": "no phone here"})

    assert execution["status"] == "failed"
    assert execution["error"] == "step 'validate' failed: unresolved reference {{input.phone}} in query"
    assert execution["steps"][0]["attempts"] == 1
    assert execution["steps"][0]["response"] is None
    assert local_server.hits == 0


def test_contact_fields_are_available_to_templates(alice_api, acme, httpbin):
    contact = ContactFactory(workspace=acme, email="ada@example.com", custom_fields={"tier": "gold"})
    connector = make_connector(
        acme,
        [
            {
                "name": "lookup",
                "url": f"{httpbin.url}/get",
                "query": {"email": "{{contact.email}}", "tier": "{{contact.custom_fields.tier}}"},
                "extract": {"email": "args.email", "tier": "args.tier"},
            }
        ],
    )

    execution = run_api(alice_api, connector, contact_id=contact.id)

    assert execution["output"] == {"lookup": {"email": "ada@example.com", "tier": "gold"}}


# ------------------------------------------------------------------------------------------------------------
# Contact mapping


@pytest.fixture
def validation_connector(acme, local_server):
    local_server.route("/validate", json_reply({"valid": True, "carrier": "Orange", "line": {"type": "mobile"}}))
    return make_connector(
        acme,
        [
            {
                "name": "validate",
                "url": f"{local_server.url}/validate",
                "extract": {"valid": "valid", "carrier": "carrier"},
            }
        ],
        contact_mapping={
            "phone_valid": "{{steps.validate.valid}}",
            "custom_fields.carrier": "{{steps.validate.carrier}}",
            "job_title": "{{steps.validate.response.body.line.type | upper}}",
        },
    )


def test_contact_mapping_is_applied_when_the_execution_succeeds(alice_api, acme, validation_connector):
    contact = ContactFactory(workspace=acme, custom_fields={"kept": 1})

    execution = run_api(alice_api, validation_connector, contact_id=contact.id)

    assert execution["status"] == "succeeded"
    assert execution["notes"] == []
    contact.refresh_from_db()
    assert contact.phone_valid is True
    assert contact.job_title == "MOBILE"
    assert contact.custom_fields == {"kept": 1, "carrier": "Orange"}


def test_contact_mapping_is_not_applied_when_the_execution_fails(alice_api, acme, local_server, validation_connector):
    local_server.route("/validate", json_reply({"valid": False}, status=404))
    contact = ContactFactory(workspace=acme)

    execution = run_api(alice_api, validation_connector, contact_id=contact.id)

    assert execution["status"] == "failed"
    contact.refresh_from_db()
    assert (contact.phone_valid, contact.job_title, contact.custom_fields) == (None, "", {})


def test_unresolved_contact_mapping_is_skipped_and_noted(alice_api, acme, local_server):
    local_server.route("/validate", json_reply({"valid": True}))
    connector = make_connector(
        acme,
        [{"name": "validate", "url": f"{local_server.url}/validate", "extract": {"valid": "valid"}}],
        contact_mapping={"phone_valid": "{{steps.validate.valid}}", "company": "{{input.company}}"},
    )
    contact = ContactFactory(workspace=acme, company="Before")

    execution = run_api(alice_api, connector, contact_id=contact.id)

    assert execution["status"] == "succeeded"
    assert execution["notes"] == ["contact_mapping 'company' skipped: unresolved reference {{input.company}}"]
    contact.refresh_from_db()
    assert (contact.phone_valid, contact.company) == (True, "Before")


def test_contact_mapping_without_a_contact_is_noted(alice_api, validation_connector):
    execution = run_api(alice_api, validation_connector)

    assert execution["status"] == "succeeded"
    assert execution["notes"] == ["contact_mapping not applied: the execution has no contact."]
    assert Contact.objects.count() == 0


# ------------------------------------------------------------------------------------------------------------
# Failures, continue_on_error, skipped steps


def test_failed_step_skips_the_rest_and_fails_the_execution(alice_api, acme, local_server):
    local_server.route("/two", json_reply({"error": "bad"}, status=422))
    connector = make_connector(
        acme,
        [
            {"name": "one", "url": f"{local_server.url}/one"},
            {"name": "two", "url": f"{local_server.url}/two"},
            {"name": "three", "url": f"{local_server.url}/three"},
        ],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == "step 'two' failed: HTTP 422"
    assert execution["output"] == {"one": {}}
    _one, two, three = execution["steps"]
    assert (two["status"], two["attempts"], two["error"]) == ("failed", 1, "HTTP 422")
    assert two["response"]["body"] == {"error": "bad"}
    assert three == {
        "name": "three",
        "status": "skipped",
        "attempts": 0,
        "request": {},
        "response": None,
        "extracted": {},
        "error": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
    }
    assert [r.path for r in local_server.requests] == ["/one", "/two"]


def test_continue_on_error_records_the_failure_and_the_execution_succeeds(alice_api, acme, local_server):
    local_server.route("/optional", Reply(404))
    connector = make_connector(
        acme,
        [
            {"name": "optional", "url": f"{local_server.url}/optional", "continue_on_error": True},
            {"name": "main", "url": f"{local_server.url}/main"},
        ],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "succeeded"
    assert execution["error"] is None
    assert [(s["name"], s["status"], s["error"]) for s in execution["steps"]] == [
        ("optional", "failed", "HTTP 404"),
        ("main", "succeeded", None),
    ]
    assert execution["output"] == {"main": {}}


def test_timeout_fails_the_step_as_transient_after_its_attempts(alice_api, acme, local_server):
    local_server.route("/slow", Reply(200, delay=3))
    connector = make_connector(
        acme, [{"name": "slow", "url": f"{local_server.url}/slow", "timeout_seconds": 1, "retry": {"max_attempts": 1}}]
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == f"step 'slow' failed: timed out waiting for the response from {local_server.url}/slow"
    assert execution["steps"][0]["response"] is None
    assert execution["steps"][0]["request"]["url"] == f"{local_server.url}/slow"


# ------------------------------------------------------------------------------------------------------------
# Response storage


def test_response_body_over_64_kib_is_stored_cut(alice_api, acme, local_server):
    local_server.route("/big", Reply(200, body=("é" * 50_000).encode(), headers={"Content-Type": "text/plain"}))
    connector = make_connector(acme, [{"name": "big", "url": f"{local_server.url}/big"}])

    execution = run_api(alice_api, connector)

    assert execution["status"] == "succeeded"
    assert execution["steps"][0]["response"]["body"] == "é" * 32768


def test_response_over_10_mib_fails_with_a_clear_error(alice_api, acme, local_server):
    local_server.route("/huge", Reply(200, body_size=12 * 1024 * 1024, content_length=False))
    connector = make_connector(acme, [{"name": "huge", "url": f"{local_server.url}/huge"}])

    execution = run_api(alice_api, connector)

    assert execution["status"] == "failed"
    assert execution["error"] == (
        f"step 'huge' failed: the response from {local_server.url}/huge is larger than the 10485760-byte limit"
    )
    assert execution["steps"][0]["attempts"] == 1


def test_binary_response_is_stored_as_size_sha256_and_base64(alice_api, acme, local_server):
    content = bytes(range(256)) * 1024
    local_server.route("/file.bin", Reply(200, body=content, headers={"Content-Type": "application/octet-stream"}))
    connector = make_connector(
        acme, [{"name": "download", "url": f"{local_server.url}/file.bin", "extract": {"size": "size"}}]
    )

    execution = run_api(alice_api, connector)

    assert execution["steps"][0]["response"]["body"] == {
        "size": 262144,
        "sha256": hashlib.sha256(content).hexdigest(),
        "base64": base64.b64encode(content[:65536]).decode(),
    }
    assert execution["output"] == {"download": {"size": 262144}}


# ------------------------------------------------------------------------------------------------------------
# Counters


def test_finished_executions_update_the_connector_counters(alice_api, acme, local_server):
    local_server.route("/x", [Reply(200), Reply(200), Reply(400)])
    connector = make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])

    statuses = [run_api(alice_api, connector)["status"] for _ in range(3)]

    assert statuses == ["succeeded", "succeeded", "failed"]
    stats = alice_api.get(f"/api/v1/connectors/{connector.id}").json()["stats"]
    assert (stats["total_executions"], stats["successful_executions"], stats["failed_executions"]) == (3, 2, 1)
    assert stats["last_executed_at"] is not None


def test_processing_a_finished_execution_again_changes_nothing(alice_api, acme, local_server):
    connector = make_connector(acme, [{"name": "x", "url": f"{local_server.url}/x"}])
    execution = services.execution_create(connector=connector, input={}, enqueue=False)
    run_to_end(execution.id)

    run_to_end(execution.id)

    connector.refresh_from_db()
    assert connector.total_executions == 1
    assert local_server.hits == 1


def test_token_obtained_by_an_earlier_step_and_used_as_auth_is_not_stored(alice_api, acme, local_server):
    local_server.route("/login", json_reply({"access_token": "tok-9f8e7d6c5b"}))
    connector = make_connector(
        acme,
        [
            {
                "name": "login",
                "method": "POST",
                "url": f"{local_server.url}/login",
                "extract": {"token": "access_token"},
            },
            {
                "name": "call",
                "url": f"{local_server.url}/call",
                "auth": {"type": "bearer", "token": "{{steps.login.token}}"},
            },
        ],
    )

    execution = run_api(alice_api, connector)

    assert execution["status"] == "succeeded"
    assert "tok-9f8e7d6c5b" not in json.dumps(execution)


def test_token_from_an_earlier_step_still_authenticates_after_a_retry(alice_api, acme, local_server, monkeypatch):
    monkeypatch.setattr("connectors.engine.runner.backoff_delay", lambda *args, **kwargs: 0.0)
    local_server.route("/login", json_reply({"access_token": "tok-1a2b3c4d5e"}))
    local_server.route("/call", [Reply(503), Reply(200)])
    connector = make_connector(
        acme,
        [
            {
                "name": "login",
                "method": "POST",
                "url": f"{local_server.url}/login",
                "extract": {"token": "access_token"},
            },
            {
                "name": "call",
                "url": f"{local_server.url}/call",
                "auth": {"type": "bearer", "token": "{{steps.login.token}}"},
            },
        ],
    )

    execution = run_to_end(execute(alice_api, connector).json()["id"])

    assert execution.status == Status.SUCCEEDED
    calls = [r for r in local_server.requests if r.path == "/call"]
    assert [r.headers["Authorization"] for r in calls] == ["Bearer tok-1a2b3c4d5e"] * 2
    step = execution.step_records.get(name="login")
    assert "tok-1a2b3c4d5e" not in json.dumps([step.response, step.extracted, execution.output])
    assert "tok-1a2b3c4d5e" not in step.sealed
