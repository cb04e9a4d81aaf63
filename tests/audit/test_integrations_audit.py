"""Audit entries and quotas for API keys, triggers, outbound webhook endpoints and batches."""

import pytest

from audit.models import AuditEntry
from tests.executions.helpers import make_connector
from usage.models import MonthlyUsage, WorkspaceQuota
from usage.services import reserve_executions

CONNECTOR_STEPS = [{"name": "fetch", "url": "https://api.example.com/x"}]


def actions(workspace):
    return list(AuditEntry.objects.filter(workspace=workspace).order_by("id").values_list("actor", "action"))


@pytest.fixture
def connector(acme):
    return make_connector(acme, CONNECTOR_STEPS)


def test_api_keys_are_audited_and_act_as_their_prefix(alice_api, acme, anon_api, connector):
    created = alice_api.post("/api/v1/workspace/api-keys", {"name": "backend", "role": "admin"}, format="json")
    assert created.status_code == 201
    key, prefix = created.json()["key"], created.json()["prefix"]
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    anon_api.patch(f"/api/v1/connectors/{connector.id}", {"name": "Renamed by a key"}, format="json")
    alice_api.delete(f"/api/v1/workspace/api-keys/{created.json()['id']}")

    assert actions(acme)[1:] == [
        ("alice@acme.test", "api_key.created"),
        (f"api_key:{prefix}", "connector.updated"),
        ("alice@acme.test", "api_key.deleted"),
    ]
    entry = AuditEntry.objects.get(action="api_key.created")
    assert key not in str(entry.details)
    assert entry.details == {"name": "backend", "role": "admin", "prefix": prefix}


def test_triggers_are_audited(alice_api, acme, connector):
    url = f"/api/v1/connectors/{connector.id}/triggers"
    trigger = alice_api.post(url, {"type": "webhook"}, format="json").json()
    alice_api.patch(f"{url}/{trigger['id']}", {"is_active": False}, format="json")
    alice_api.delete(f"{url}/{trigger['id']}")

    assert [action for _, action in actions(acme)[1:]] == ["trigger.created", "trigger.updated", "trigger.deleted"]
    assert {e.target_id for e in AuditEntry.objects.filter(target_type="trigger")} == {trigger["id"]}
    assert "signing_secret" not in str(list(AuditEntry.objects.values_list("details", flat=True)))


def test_webhook_endpoints_are_audited(alice_api, acme):
    url = "/api/v1/workspace/webhook-endpoints"
    body = {"url": "https://receiver.example/in", "events": ["execution.failed"]}
    endpoint = alice_api.post(url, body, format="json").json()
    alice_api.patch(f"{url}/{endpoint['id']}", {"is_active": False}, format="json")
    alice_api.delete(f"{url}/{endpoint['id']}")

    assert [action for _, action in actions(acme)] == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_past_the_quota_is_refused_whole(alice_api, acme, connector, monkeypatch):
    monkeypatch.setattr("batches.dispatch.start", lambda *args, **kwargs: None)
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=10)
    reserve_executions(workspace_id=acme.id, count=8)
    url = f"/api/v1/connectors/{connector.id}/execute-batch"

    refused = alice_api.post(url, {"items": [{"input": {}}] * 3}, format="json")
    accepted = alice_api.post(url, {"items": [{"input": {}}] * 2}, format="json")

    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert int(refused["Retry-After"]) > 0
    assert accepted.status_code == 202
    assert MonthlyUsage.objects.get(workspace=acme).executions == 10


@pytest.mark.django_db(transaction=True)
def test_an_inbound_webhook_past_the_quota_is_429(alice_api, acme, anon_api, connector, monkeypatch):
    monkeypatch.setattr("executions.dispatch.enqueue", lambda *args, **kwargs: None)
    trigger = alice_api.post(f"/api/v1/connectors/{connector.id}/triggers", {"type": "webhook"}, format="json").json()
    WorkspaceQuota.objects.create(workspace=acme, executions_per_month=0)

    response = anon_api.post(trigger["url"].split("testserver", 1)[-1], {"order": 1}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert "Retry-After" in response
