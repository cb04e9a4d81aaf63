"""`POST /hooks/{token}`: inbound webhooks start executions (docs/api.md, "Triggers")."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions.models import Execution
from tests.factories import ConnectorFactory
from tests.triggers.helpers import post_hook, signed_headers
from triggers.models import Trigger
from triggers.services import trigger_create
from usage.models import MonthlyUsage

SCHEMA = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}


@pytest.fixture
def connector(acme):
    return ConnectorFactory(workspace=acme, input_schema=SCHEMA)


@pytest.fixture
def hook(connector):
    trigger, secret = trigger_create(connector=connector, data={"type": "webhook", "input": {"source": "form"}})
    return trigger, secret, f"/hooks/{trigger.token}"


@pytest.fixture
def signed_hook(connector):
    trigger, secret = trigger_create(connector=connector, data={"type": "webhook", "require_signature": True})
    return trigger, secret, f"/hooks/{trigger.token}"


def test_json_object_is_merged_over_the_trigger_input(anon_api, hook):
    trigger, _, url = hook
    response = post_hook(anon_api, url, {"email": "a@b.test", "source": "override"})
    assert response.status_code == 202, response.content
    execution = Execution.objects.get(pk=response.json()["execution_id"])
    assert response.json() == {"execution_id": str(execution.id)}
    assert (execution.triggered_by, execution.status) == ("webhook", "queued")
    assert execution.input == {"email": "a@b.test", "source": "override"}
    trigger.refresh_from_db()
    assert trigger.last_fired_at is not None


def test_non_object_json_goes_under_body(anon_api, acme):
    trigger, _ = trigger_create(connector=ConnectorFactory(workspace=acme), data={"type": "webhook"})
    response = post_hook(anon_api, f"/hooks/{trigger.token}/", [1, 2])
    assert response.status_code == 202
    assert Execution.objects.get().input == {"body": [1, 2]}


def test_empty_body_is_an_empty_object(anon_api, acme):
    trigger, _ = trigger_create(connector=ConnectorFactory(workspace=acme), data={"type": "webhook"})
    assert post_hook(anon_api, f"/hooks/{trigger.token}", b"").status_code == 202


@pytest.mark.parametrize("body", [b"not json", b"{", b'{"a": NaN}', b"\xff\xfe"])
def test_body_that_is_not_json_is_400(anon_api, hook, body):
    response = post_hook(anon_api, hook[2], body)
    assert response.status_code == 400
    assert response.json()["detail"] == "The body must be JSON."
    assert not Execution.objects.exists()


def test_input_failing_the_schema_is_400(anon_api, hook):
    response = post_hook(anon_api, hook[2], {"phone": "1"})
    assert response.status_code == 400
    assert "email" in response.json()["input"][0]
    assert not Execution.objects.exists()


def test_oversized_body_is_413(anon_api, hook, settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = post_hook(anon_api, hook[2], {"email": "x" * 4096})
    assert response.status_code == 413
    assert not Execution.objects.exists()


def test_unknown_inactive_or_deleted_trigger_is_404(anon_api, hook):
    trigger, _, url = hook
    assert post_hook(anon_api, "/hooks/" + "A" * 43, {"email": "e"}).status_code == 404
    Trigger.objects.filter(pk=trigger.pk).update(is_active=False)
    assert post_hook(anon_api, url, {"email": "e"}).status_code == 404
    Trigger.objects.filter(pk=trigger.pk).delete()
    response = post_hook(anon_api, url, {"email": "e"})
    assert response.status_code == 404
    assert response.json()["detail"]


def test_inactive_connector_is_409(anon_api, hook, connector):
    connector.is_active = False
    connector.save()
    assert post_hook(anon_api, hook[2], {"email": "e"}).status_code == 409
    assert not Execution.objects.exists()


def test_repeated_webhook_id_answers_the_first_execution(anon_api, hook):
    first = post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_1")
    again = post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_1")
    other = post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_2")
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert again.json() == first.json()
    assert Execution.objects.count() == 2


def test_reused_webhook_id_with_another_body_is_422(anon_api, hook):
    post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_1")
    response = post_hook(anon_api, hook[2], {"email": "other"}, HTTP_WEBHOOK_ID="evt_1")
    assert response.status_code == 422
    assert Execution.objects.count() == 1


def test_webhook_id_dedupe_window_is_24_hours(anon_api, hook):
    from datetime import timedelta

    from django.utils import timezone

    post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_1")
    Execution.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert post_hook(anon_api, hook[2], {"email": "e"}, HTTP_WEBHOOK_ID="evt_1").status_code == 202
    assert Execution.objects.count() == 2


def test_signed_hook_accepts_a_standard_webhooks_signature(anon_api, signed_hook):
    _, secret, url = signed_hook
    body = b'{"email": "signed@example.test"}'
    response = post_hook(anon_api, url, body, **signed_headers(secret, body, msg_id="msg_a"))
    assert response.status_code == 202, response.content
    replay = post_hook(anon_api, url, body, **signed_headers(secret, body, msg_id="msg_a"))
    assert replay.status_code == 200
    assert replay.json() == response.json()


def test_signed_hook_refuses_missing_foreign_or_stale_signatures(anon_api, signed_hook, hook):
    _, secret, url = signed_hook
    other_secret = hook[1]
    body = b'{"email": "signed@example.test"}'
    cases = {
        "missing": {},
        "other secret": signed_headers(other_secret, body),
        "other body": signed_headers(secret, b'{"email": "x"}'),
        "too old": signed_headers(secret, body, timestamp=time.time() - 310),
        "too new": signed_headers(secret, body, timestamp=time.time() + 310),
        "bad timestamp": {**signed_headers(secret, body), "HTTP_WEBHOOK_TIMESTAMP": "soon"},
    }
    for name, headers in cases.items():
        response = post_hook(anon_api, url, body, **headers)
        assert response.status_code == 401, name
        assert response.json()["detail"].startswith("Signature check failed"), name
    assert not Execution.objects.exists()


def test_hook_is_throttled_per_trigger(anon_api, hook, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "webhook": "2/min"},
    }
    from rest_framework.settings import api_settings

    api_settings.reload()
    from core.throttling import WebhookTriggerThrottle

    WebhookTriggerThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [post_hook(anon_api, hook[2], {"email": "e"}).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
    finally:
        WebhookTriggerThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_a_hook_call_costs_a_lookup_an_insert_and_an_update(anon_api, hook):
    # In production the hook's atomic block is the transaction; under the test's transaction it is a
    # SAVEPOINT pair, not counted here. The statements that touch tables: lookup, INSERT, last_fired_at. The
    # month's usage is counted by the database when the INSERT commits (usage/0003), not by a statement.
    with CaptureQueriesContext(connection) as captured:
        post_hook(anon_api, hook[2], {"email": "e"})
    statements = [q["sql"].split()[0] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements == ["SELECT", "INSERT", "UPDATE"]
    [insert] = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert "executions_execution" in insert
    assert MonthlyUsage.objects.get(workspace_id=hook[0].workspace_id).executions == 1
