"""The trigger API: webhook and schedule triggers of a connector (docs/api.md, "Triggers")."""

from datetime import datetime

import pytest

from tests.factories import ConnectorFactory
from triggers.models import Trigger


@pytest.fixture
def connector(acme):
    return ConnectorFactory(workspace=acme)


def url(connector, trigger_id=None) -> str:
    base = f"/api/v1/connectors/{connector.id}/triggers"
    return f"{base}/{trigger_id}" if trigger_id else base


def test_webhook_trigger_shows_url_and_secret_once(alice_api, connector):
    response = alice_api.post(url(connector), {"type": "webhook", "input": {"source": "form"}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    trigger = Trigger.objects.get(pk=body["id"])
    assert set(body) == {
        "id",
        "type",
        "is_active",
        "input",
        "created_at",
        "last_fired_at",
        "url",
        "require_signature",
        "signing_secret",
    }
    assert body["url"] == f"http://testserver/hooks/{trigger.token}"
    assert len(trigger.token) >= 43
    assert body["signing_secret"].startswith("whsec_")
    assert body["signing_secret"] not in trigger.signing_secret
    assert (body["require_signature"], body["input"], body["is_active"]) == (False, {"source": "form"}, True)
    shown = alice_api.get(url(connector, body["id"])).json()
    assert "signing_secret" not in shown
    assert shown["url"] == body["url"]
    assert alice_api.get(url(connector) + "/").json()["count"] == 1


def test_public_base_url_builds_the_hook_url(alice_api, connector, settings):
    settings.PUBLIC_BASE_URL = "https://connectors.example.com"
    body = alice_api.post(url(connector), {"type": "webhook"}, format="json").json()
    assert body["url"].startswith("https://connectors.example.com/hooks/")


def test_schedule_trigger_has_next_run_at_in_its_time_zone(alice_api, connector):
    response = alice_api.post(
        url(connector), {"type": "schedule", "cron": "30 9 * * *", "timezone": "Europe/Paris"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "signing_secret" not in body
    assert "url" not in body
    assert (body["cron"], body["timezone"]) == ("30 9 * * *", "Europe/Paris")
    next_run = datetime.fromisoformat(body["next_run_at"])
    assert next_run.utcoffset().total_seconds() == 0
    local = next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (9, 30)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "poll"}, "type"),
        ({"type": "schedule", "cron": "61 * * * *"}, "cron"),
        ({"type": "schedule", "cron": "* * * *"}, "cron"),
        ({"type": "schedule", "cron": "* * * * * *"}, "cron"),
        ({"type": "schedule"}, "cron"),
        ({"type": "schedule", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"type": "schedule", "cron": "* * * * *", "timezone": "../../etc/passwd"}, "timezone"),
        ({"type": "schedule", "cron": "* * * * *", "require_signature": True}, "require_signature"),
        ({"type": "webhook", "cron": "* * * * *"}, "cron"),
        ({"type": "webhook", "input": [1]}, "input"),
    ],
)
def test_bad_trigger_is_400_and_creates_nothing(alice_api, connector, payload, field):
    response = alice_api.post(url(connector), payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Trigger.objects.count() == 0


def test_patch_changes_fields_and_recomputes_next_run(alice_api, connector):
    body = alice_api.post(url(connector), {"type": "schedule", "cron": "0 0 1 1 *"}, format="json").json()
    patched = alice_api.patch(url(connector, body["id"]), {"cron": "*/5 * * * *", "is_active": False}, format="json")
    assert patched.status_code == 200
    assert patched.json()["cron"] == "*/5 * * * *"
    assert patched.json()["is_active"] is False
    assert patched.json()["next_run_at"] < body["next_run_at"]
    assert alice_api.patch(url(connector, body["id"]), {"type": "webhook"}, format="json").status_code == 400
    assert alice_api.patch(url(connector, body["id"]), {"cron": "nope"}, format="json").status_code == 400


def test_delete_removes_the_trigger(alice_api, connector):
    body = alice_api.post(url(connector), {"type": "webhook"}, format="json").json()
    assert alice_api.delete(url(connector, body["id"])).status_code == 204
    assert not Trigger.objects.exists()


def test_another_workspace_sees_no_trigger(alice_api, bob_api, connector, globex):
    body = alice_api.post(url(connector), {"type": "webhook"}, format="json").json()
    assert bob_api.get(url(connector)).status_code == 404
    assert bob_api.post(url(connector), {"type": "webhook"}, format="json").status_code == 404
    assert bob_api.get(url(connector, body["id"])).status_code == 404
    assert bob_api.delete(url(connector, body["id"])).status_code == 404
    theirs = ConnectorFactory(workspace=globex)
    assert bob_api.get(url(theirs, body["id"])).status_code == 404
    assert Trigger.objects.count() == 1
