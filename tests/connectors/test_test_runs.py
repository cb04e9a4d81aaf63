"""Test runs (POST /connectors/{id}/test and POST /connectors/test): the real requests, through the runner that
executes connectors, against real local servers; and nothing written anywhere."""

import json

import pytest
from django.apps import apps
from rest_framework.throttling import SimpleRateThrottle

from credentials.services import credential_upsert
from executions import trial
from executions.runtime import reset_runner
from tests.executions.helpers import json_reply, make_connector
from tests.factories import ContactFactory
from tests.local_server import Reply

URL = "/api/v1/connectors"
TOKEN = "sk-live-test-run-5Qm8Zr"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    yield
    reset_runner()


def every_row() -> dict[str, list[str]]:
    """Every row of every table the project owns, as text: a write anywhere changes it."""
    snapshot = {}
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy and model._meta.app_label not in ("sessions", "admin"):
            snapshot[model._meta.label] = sorted(repr(row) for row in model.objects.values_list())
    return snapshot


def lookup_and_tag(server) -> list[dict]:
    return [
        {
            "name": "lookup",
            "url": f"{server.url}/lookup",
            "query": {"phone": "{{input.phone}}"},
            "auth": {"type": "bearer", "token": "{{workspace.crm.token}}"},
            "extract": {"valid": "valid", "carrier": "carrier"},
        },
        {"name": "tag", "method": "POST", "url": f"{server.url}/tag/{{{{steps.lookup.carrier}}}}"},
    ]


def test_a_saved_connector_runs_for_real_and_nothing_is_written(alice_api, acme, local_server):
    credential_upsert(workspace=acme, service_name="crm", fields={"token": TOKEN})
    local_server.route("/lookup", json_reply({"valid": True, "carrier": "Orange"}))
    contact = ContactFactory(workspace=acme, phone="+33 6", phone_valid=None, custom_fields={"tier": "gold"})
    connector = make_connector(
        acme,
        lookup_and_tag(local_server),
        contact_mapping={"phone_valid": "{{steps.lookup.valid}}", "custom_fields.carrier": "{{steps.lookup.carrier}}"},
    )
    before = every_row()

    response = alice_api.post(
        f"{URL}/{connector.id}/test", {"input": {"phone": "+33 6"}, "contact_id": str(contact.id)}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "output", "error", "steps", "contact_changes", "notes"}
    assert (body["status"], body["error"]) == ("succeeded", None)
    assert body["output"] == {"lookup": {"valid": True, "carrier": "Orange"}, "tag": {}}
    assert [(s["name"], s["status"], s["attempts"]) for s in body["steps"]] == [
        ("lookup", "succeeded", 1),
        ("tag", "succeeded", 1),
    ]
    assert set(body["steps"][0]) == {
        "name",
        "status",
        "attempts",
        "request",
        "response",
        "extracted",
        "error",
        "started_at",
        "finished_at",
        "duration_ms",
    }
    assert body["steps"][0]["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert body["contact_changes"] == {
        "phone_valid": {"from": None, "to": True},
        "custom_fields.carrier": {"from": None, "to": "Orange"},
    }
    assert [r.path for r in local_server.requests] == ["/lookup?phone=%2B33+6", "/tag/Orange"]
    assert local_server.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in response.content.decode()
    assert every_row() == before


def test_an_unsaved_definition_runs_without_a_name(alice_api, local_server):
    local_server.route("/hello", json_reply({"greeting": "hi"}))
    definition = {"steps": [{"name": "hello", "url": f"{local_server.url}/hello", "extract": {"g": "greeting"}}]}
    before = every_row()

    response = alice_api.post(f"{URL}/test/", {"definition": definition, "input": {}}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["output"] == {"hello": {"g": "hi"}}
    assert response.json()["contact_changes"] == {}
    assert local_server.hits == 1
    assert every_row() == before


def test_an_invalid_definition_gets_400_with_the_errors_saving_gives(alice_api, local_server):
    definition = {"name": "x", "steps": [{"name": "ok", "url": "https://a.example"}, {"name": "Bad", "url": "ftp://x"}]}

    tested = alice_api.post(f"{URL}/test", {"definition": definition}, format="json")
    saved = alice_api.post(URL, definition, format="json")

    assert tested.status_code == saved.status_code == 400
    assert tested.json() == saved.json()
    assert set(tested.json()["steps"][1]) == {"name", "url"}
    assert local_server.hits == 0


@pytest.mark.parametrize("definition", [None, [], "steps", {"steps": []}])
def test_a_definition_that_is_not_a_definition_gets_400(alice_api, definition):
    response = alice_api.post(f"{URL}/test", {"definition": definition}, format="json")

    assert response.status_code == 400


def test_input_that_fails_the_input_schema_gets_400_and_sends_nothing(alice_api, acme, local_server):
    connector = make_connector(
        acme,
        [{"name": "a", "url": f"{local_server.url}/a"}],
        input_schema={"type": "object", "required": ["phone"]},
    )

    response = alice_api.post(f"{URL}/{connector.id}/test", {"input": {}}, format="json")

    assert response.status_code == 400
    assert "phone" in response.json()["input"][0]
    assert local_server.hits == 0


def test_a_contact_of_another_workspace_gets_400(alice_api, acme, globex, local_server):
    connector = make_connector(acme, [{"name": "a", "url": f"{local_server.url}/a"}])
    stranger = ContactFactory(workspace=globex)

    response = alice_api.post(f"{URL}/{connector.id}/test", {"contact_id": str(stranger.id)}, format="json")

    assert response.status_code == 400
    assert response.json() == {"contact_id": ["No such contact in this workspace."]}
    assert local_server.hits == 0


def test_retries_are_off(alice_api, acme, local_server):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    connector = make_connector(
        acme, [{"name": "flaky", "url": f"{local_server.url}/flaky", "retry": {"max_attempts": 5}}]
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert (body["status"], body["steps"][0]["attempts"], body["steps"][0]["error"]) == ("failed", 1, "HTTP 503")
    assert body["error"] == "step 'flaky' failed: HTTP 503"
    assert local_server.hits == 1


def test_the_run_is_bounded_by_max_duration_seconds(alice_api, acme, local_server):
    local_server.route("/slow", Reply(200, delay=3))
    connector = make_connector(
        acme,
        [{"name": "slow", "url": f"{local_server.url}/slow"}, {"name": "next", "url": f"{local_server.url}/n"}],
        max_duration_seconds=1,
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert body["status"] == "failed"
    assert [s["status"] for s in body["steps"]] == ["failed", "skipped"]
    assert "timed out" in body["steps"][0]["error"] or "ran out of time" in body["steps"][0]["error"]


def test_the_run_is_bounded_by_the_test_run_cap_whatever_the_definition_says(
    alice_api, acme, local_server, monkeypatch
):
    monkeypatch.setattr(trial, "TEST_RUN_MAX_SECONDS", 1)
    local_server.route("/slow", Reply(200, delay=3))
    connector = make_connector(acme, [{"name": "slow", "url": f"{local_server.url}/slow"}], max_duration_seconds=900)

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert body["status"] == "failed"
    assert body["steps"][0]["status"] == "failed"


def test_the_ssrf_guard_applies(alice_api, acme, local_server, settings):
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = []
    reset_runner()
    connector = make_connector(acme, [{"name": "inside", "url": f"{local_server.url}/admin"}])

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert body["status"] == "failed"
    assert "127.0.0.1" in body["steps"][0]["error"]
    assert local_server.hits == 0


def test_secrets_echoed_back_are_redacted_everywhere(alice_api, acme, local_server):
    credential_upsert(workspace=acme, service_name="crm", fields={"token": TOKEN})

    def echo(request):
        payload = {"seen": request.header("Authorization"), "again": request.header("Authorization")[7:]}
        return json_reply(payload, 400)

    local_server.route("/echo", echo)
    connector = make_connector(
        acme,
        [
            {
                "name": "echo",
                "url": f"{local_server.url}/echo",
                "auth": {"type": "bearer", "token": "{{workspace.crm.token}}"},
                "extract": {"seen": "seen"},
            }
        ],
    )

    response = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json")

    assert local_server.hits == 1
    assert TOKEN not in response.content.decode()
    assert response.json()["steps"][0]["response"]["body"] == {"seen": "Bearer [REDACTED]", "again": "[REDACTED]"}


def test_a_missing_credential_fails_the_step_before_sending(alice_api, acme, local_server):
    connector = make_connector(
        acme,
        [{"name": "a", "url": f"{local_server.url}/a", "auth": {"type": "bearer", "token": "{{workspace.nope.k}}"}}],
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert body["status"] == "failed"
    assert "'nope'" in body["steps"][0]["error"]
    assert local_server.hits == 0


def test_an_inactive_connector_can_be_tested(alice_api, acme, local_server):
    connector = make_connector(acme, [{"name": "a", "url": f"{local_server.url}/a"}], is_active=False)

    response = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json")

    assert (response.status_code, response.json()["status"]) == (200, "succeeded")


def test_a_failed_run_shows_no_contact_changes(alice_api, acme, local_server):
    local_server.route("/a", json_reply({"v": "x"}, 500))
    contact = ContactFactory(workspace=acme)
    connector = make_connector(
        acme,
        [{"name": "a", "url": f"{local_server.url}/a", "extract": {"v": "v"}, "retry": {"max_attempts": 1}}],
        contact_mapping={"company": "{{steps.a.v}}"},
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {"contact_id": str(contact.id)}, format="json").json()

    assert (body["status"], body["contact_changes"]) == ("failed", {})


def test_without_a_contact_the_mapping_is_noted_not_applied(alice_api, acme, local_server):
    local_server.route("/a", json_reply({"v": "x"}))
    connector = make_connector(
        acme,
        [{"name": "a", "url": f"{local_server.url}/a", "extract": {"v": "v"}}],
        contact_mapping={"company": "{{steps.a.v}}"},
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {}, format="json").json()

    assert body["contact_changes"] == {}
    assert body["notes"] == ["contact_mapping not applied: the test run has no contact_id."]


def test_an_unresolved_mapping_is_skipped_with_a_note(alice_api, acme, local_server):
    local_server.route("/a", json_reply({"v": "x"}))
    contact = ContactFactory(workspace=acme, company="Old")
    connector = make_connector(
        acme,
        [{"name": "a", "url": f"{local_server.url}/a", "extract": {"v": "v"}}],
        contact_mapping={"company": "{{steps.a.v}}", "job_title": "{{input.title}}"},
    )

    body = alice_api.post(f"{URL}/{connector.id}/test", {"contact_id": str(contact.id)}, format="json").json()

    assert body["contact_changes"] == {"company": {"from": "Old", "to": "x"}}
    assert len(body["notes"]) == 1
    assert body["notes"][0].startswith("contact_mapping 'job_title' skipped:")


def test_test_runs_are_throttled_per_user(alice_api, acme, local_server, monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "test_run": "2/min"}
    )
    connector = make_connector(acme, [{"name": "a", "url": f"{local_server.url}/a"}])
    definition = {"steps": [{"name": "a", "url": f"{local_server.url}/a"}]}

    answers = [
        alice_api.post(f"{URL}/{connector.id}/test", {}, format="json"),
        alice_api.post(f"{URL}/test", {"definition": definition}, format="json"),
        alice_api.post(f"{URL}/{connector.id}/test", {}, format="json"),
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) >= 1
    assert local_server.hits == 2
    # Saving and executing are not counted against it.
    assert alice_api.get(f"{URL}/{connector.id}").status_code == 200


def test_unknown_connector_gets_404(alice_api, db):
    response = alice_api.post(f"{URL}/00000000-0000-0000-0000-000000000000/test", {}, format="json")

    assert response.status_code == 404
    assert json.loads(response.content)["detail"]
