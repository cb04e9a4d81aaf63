"""Abuse limits: throttles (per user, per workspace, per client address) answering 429 with Retry-After; the
per-workspace cap on running executions (over it executions wait, never refused); and size limits on request
bodies (chunked ones too), definitions, execute input and stored outputs, each a JSON 400/413 with a message.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Hooks, Runner
from connectors.engine.spec import MAX_DEFINITION_BYTES, MAX_ENTRIES, MAX_STEPS, MAX_TEMPLATE_LENGTH
from contacts.models import Contact
from executions import dispatch, lifecycle, services
from executions.models import Execution
from tests.conftest import client_for
from tests.factories import PASSWORD, ConnectorFactory, MembershipFactory, UserFactory, normalized_definition
from tests.local_server import Reply
from workspaces.models import Role

pytest_plugins = ["tests.local_server"]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"
REFRESH = "/api/v1/auth/token/refresh"


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]
    assert 1 <= int(response["Retry-After"]) <= 60


# ------------------------------------------------------------------------------------------------------------
# Throttles


def test_default_rates_are_generous_enough_for_automated_use():
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]

    def per_minute(rate: str) -> float:
        count, period = rate.split("/")
        return int(count) * {"s": 60, "m": 1, "h": 1 / 60, "d": 1 / 1440}[period[0]]

    assert per_minute(rates["user"]) >= 1000
    assert per_minute(rates["execute"]) >= 1000
    assert per_minute(rates["auth"]) == 60


def test_rates_come_from_the_api_throttle_variables():
    env = {
        **os.environ,
        "API_THROTTLE_USER": "11/min",
        "API_THROTTLE_ANON": "12/min",
        "API_THROTTLE_AUTH": "13/min",
        "API_THROTTLE_EXECUTE": "14/min",
        "API_THROTTLE_TEST_RUN": "15/min",
        "API_THROTTLE_WEBHOOK": "16/min",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = (
        "import django; django.setup(); from django.conf import settings as s;"
        " print(s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'])"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )

    expected = {"user": "11/min", "anon": "12/min", "auth": "13/min", "execute": "14/min"}
    expected |= {"test_run": "15/min", "webhook": "16/min"}
    assert result.stdout.strip() == str(expected)


def test_token_is_throttled_per_client_address(rates, alice):
    rates(auth="3/min")
    attempts = [APIClient().post(TOKEN, {"email": alice.email, "password": "wrong"}, format="json") for _ in range(3)]

    throttled = APIClient().post(TOKEN, {"email": alice.email, "password": PASSWORD}, format="json")
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.9").post(
        TOKEN, {"email": alice.email, "password": PASSWORD}, format="json"
    )

    assert [r.status_code for r in attempts] == [401] * 3
    assert_throttled(throttled)
    assert throttled.json()["detail"].startswith("Request was throttled. Expected available in")
    assert elsewhere.status_code == 200


def test_register_token_and_refresh_share_the_auth_budget(rates, db):
    rates(auth="2/min")
    APIClient().post(REGISTER, {"email": "a@example.test", "password": "Corr3ct-horse-battery"}, format="json")
    APIClient().post(TOKEN, {"email": "a@example.test", "password": "x"}, format="json")

    assert_throttled(APIClient().post(REFRESH, {"refresh": "x"}, format="json"))
    assert_throttled(
        APIClient().post(REGISTER, {"email": "b@example.test", "password": "Corr3ct-horse-battery"}, format="json")
    )


def test_a_spoofed_forwarded_for_does_not_buy_a_fresh_budget(rates, alice):
    rates(auth="3/min")
    statuses = [
        APIClient()
        .post(TOKEN, {"email": alice.email, "password": "wrong"}, format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        .status_code
        for n in range(5)
    ]

    assert statuses == [401, 401, 401, 429, 429]


def test_users_are_throttled_each_on_their_own_budget(rates, alice_api, bob_api):
    rates(user="5/min")
    statuses = [alice_api.get("/api/v1/connectors").status_code for _ in range(5)]

    throttled = alice_api.get("/api/v1/contacts")

    assert statuses == [200] * 5
    assert_throttled(throttled)
    assert bob_api.get("/api/v1/connectors").status_code == 200


def test_execute_is_throttled_per_workspace(rates, acme, alice, bob):
    rates(execute="2/min")
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    acme_connector = ConnectorFactory(workspace=acme)
    globex_connector = ConnectorFactory(workspace=bob.memberships.get().workspace)

    def execute(client, connector):
        return client.post(f"/api/v1/connectors/{connector.id}/execute", {"input": {}}, format="json")

    first = [execute(client_for(alice, acme), acme_connector).status_code for _ in range(2)]
    carol_third = execute(client_for(carol, acme), acme_connector)
    bob_first = execute(client_for(bob, bob.memberships.get().workspace), globex_connector)

    assert first == [202, 202]
    assert_throttled(carol_third)
    assert bob_first.status_code == 202
    assert client_for(carol, acme).get("/api/v1/connectors").status_code == 200  # only execute is spent


def test_anonymous_callers_are_throttled_by_address_where_anonymous_access_is_allowed(rates, db):
    # Protected endpoints refuse anonymous callers (401) before throttling, without touching the database.
    rates(anon="3/min")
    statuses = [APIClient().get("/api/schema/").status_code for _ in range(3)]

    assert statuses == [200] * 3
    assert_throttled(APIClient().get("/api/schema/"))
    assert APIClient(REMOTE_ADDR="198.51.100.9").get("/api/schema/").status_code == 200


# ------------------------------------------------------------------------------------------------------------
# Concurrency cap


def test_executions_over_the_workspace_cap_wait_queued_and_are_never_refused(
    settings, monkeypatch, acme, alice, globex
):
    settings.CONNECTORS_WORKSPACE_CONCURRENCY = 1
    enqueued: list[tuple[str, float]] = []
    monkeypatch.setattr(
        dispatch, "enqueue", lambda execution_id, **kw: enqueued.append((str(execution_id), kw.get("delay", 0.0)))
    )
    connector = ConnectorFactory(workspace=acme)
    api = client_for(alice, acme)

    answers = [api.post(f"/api/v1/connectors/{connector.id}/execute", {"input": {}}, format="json") for _ in range(3)]
    first, second, third = (a.json()["id"] for a in answers)
    running = lifecycle.claim(first)
    waiting = lifecycle.claim(second)
    other_workspace = lifecycle.claim(
        services.execution_create(connector=ConnectorFactory(workspace=globex), input={}, enqueue=False).id
    )

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert running.status == "running"
    assert waiting is None
    assert Execution.objects.get(pk=second).status == "queued"
    assert Execution.objects.get(pk=third).status == "queued"
    assert other_workspace.status == "running"


def test_a_waiting_execution_is_asked_for_again_once_its_workspace_has_room(settings, monkeypatch, acme):
    settings.CONNECTORS_WORKSPACE_CONCURRENCY = 1
    connector = ConnectorFactory(workspace=acme)
    first = services.execution_create(connector=connector, input={}, enqueue=False)
    second = services.execution_create(connector=connector, input={}, enqueue=False)
    lifecycle.claim(first.id)
    callbacks = []
    monkeypatch.setattr("django.db.transaction.on_commit", lambda fn, *a, **k: callbacks.append(fn))
    requeued: list[float] = []
    monkeypatch.setattr(dispatch, "enqueue", lambda execution_id, **kw: requeued.append(kw.get("delay", 0.0)))

    assert lifecycle.claim(second.id) is None
    for callback in callbacks:
        callback()

    assert len(requeued) == 1
    assert 1.0 <= requeued[0] <= 3.0
    Execution.objects.filter(pk=first.id).update(status="succeeded")
    second.refresh_from_db()
    Execution.objects.filter(pk=second.id).update(run_after=None)
    assert lifecycle.claim(second.id).status == "running"


# ------------------------------------------------------------------------------------------------------------
# Request bodies


def test_a_body_over_the_limit_gets_413_before_the_view(alice_api):
    body = json.dumps({"email": "x@example.test", "custom_fields": {"blob": "x" * settings.MAX_REQUEST_BODY_BYTES}})

    response = alice_api.generic("POST", "/api/v1/contacts", body, content_type="application/json")

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
    assert not Contact.objects.exists()


def chunked_post(path: str, body: bytes, headers: dict[str, str]):
    """A POST as gunicorn hands over a chunked body: no CONTENT_LENGTH, Transfer-Encoding: chunked, the
    de-chunked body in wsgi.input and wsgi.input_terminated set."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    return Client().request(**environ)


def auth_headers(user, workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}", "X-Workspace-ID": str(workspace.id)}


def test_a_chunked_body_over_the_limit_gets_413(alice, acme):
    body = json.dumps({"email": "x@example.test", "first_name": "x" * settings.MAX_REQUEST_BODY_BYTES}).encode()

    response = chunked_post("/api/v1/contacts", body, auth_headers(alice, acme))

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
    assert not Contact.objects.exists()


def test_a_chunked_body_within_the_limit_is_read(alice, acme):
    body = json.dumps({"email": "chunked@example.test"}).encode()

    response = chunked_post("/api/v1/contacts", body, auth_headers(alice, acme))

    assert response.status_code == 201, response.content
    assert Contact.objects.get(workspace=acme).email == "chunked@example.test"


# ------------------------------------------------------------------------------------------------------------
# Definitions, input, outputs


def connector_body(steps: list[dict], **extra) -> dict:
    return {"name": "Limits", "steps": steps, **extra}


def step(name: str = "fetch", **fields) -> dict:
    return {"name": name, "url": "https://api.example.com/x", **fields}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (connector_body([step(f"s{i}") for i in range(MAX_STEPS + 1)]), "steps", f"no more than {MAX_STEPS}"),
        (
            connector_body([step(headers={f"X-H{i}": "v" for i in range(MAX_ENTRIES + 1)})]),
            "steps",
            f"At most {MAX_ENTRIES} entries",
        ),
        (
            connector_body([step(query={f"q{i}": "v" for i in range(MAX_ENTRIES + 1)})]),
            "steps",
            f"At most {MAX_ENTRIES} entries",
        ),
        (
            connector_body([step(body_type="raw", body="x" * (MAX_TEMPLATE_LENGTH + 1))]),
            "steps",
            f"at most {MAX_TEMPLATE_LENGTH} characters",
        ),
        (
            connector_body([step(url="https://api.example.com/" + "a" * 8200)]),
            "steps",
            "no more than 8192 characters",
        ),
        (
            # input_schema has its own, smaller limit (tests/security/test_input_schema.py): fill steps instead.
            connector_body([step(f"s{i}", body_type="raw", body="d" * 60_000) for i in range(9)]),
            "non_field_errors",
            f"at most {MAX_DEFINITION_BYTES} are accepted",
        ),
    ],
    ids=["steps", "headers", "query", "template-length", "url-length", "definition-size"],
)
def test_definition_limits_answer_400_with_a_message(alice_api, body, field, message):
    response = alice_api.post("/api/v1/connectors", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert message in json.dumps(response.json())


def test_execute_input_over_256_kib_gets_400_with_a_message(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)

    response = alice_api.post(
        f"/api/v1/connectors/{connector.id}/execute", {"input": {"blob": "x" * (256 * 1024)}}, format="json"
    )

    assert response.status_code == 400
    assert "at most 262144 are accepted" in response.json()["input"][0]
    assert not Execution.objects.exists()


def test_stored_outputs_are_bounded_while_later_steps_see_whole_values(local_server):
    items = [{"id": n, "text": "y" * 100} for n in range(2000)]  # ~230 KiB of JSON
    local_server.route(
        "/items", Reply(headers={"Content-Type": "application/json"}, body=json.dumps({"items": items}).encode())
    )
    definition = normalized_definition(
        {
            "steps": [
                {
                    "name": "list",
                    "url": f"{local_server.url}/items",
                    "extract": {"everything": "items", "first": "items.0.id", "last": "items[-1].id"},
                },
                {"name": "count", "url": f"{local_server.url}/count?last={{{{steps.list.last}}}}"},
            ]
        }
    )
    runner = Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")), stored_body_bytes=64 * 1024)
    records = []

    outcome = runner.advance(
        definition,
        {"input": {}, "contact": {}, "workspace": {}},
        Redactor(),
        Hooks(on_step=records.append, should_stop=lambda: False),
        finished=[],
    )

    stored = records[0].extracted
    assert outcome.status == "succeeded"
    assert (stored["first"], stored["last"]) == (0, 1999)
    assert isinstance(stored["everything"], str)
    assert stored["everything"].startswith('[{"id": 0, "text": "yyy')
    assert len(json.dumps(stored, ensure_ascii=False).encode()) <= 64 * 1024 + 64
    assert records[0].context["everything"] == items
