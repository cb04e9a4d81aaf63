"""The webhook endpoint API (docs/api.md, "Outbound webhooks")."""

import pytest

from tests.conftest import client_for
from tests.factories import ConnectorFactory, MembershipFactory, UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint
from workspaces.models import Role

URL = "/api/v1/workspace/webhook-endpoints"
BODY = {"url": "https://receiver.example/hooks", "events": ["execution.failed", "execution.succeeded"]}


def test_create_shows_the_secret_once(alice_api):
    response = alice_api.post(URL, BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "events", "connector", "is_active", "created_at", "secret"}
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["execution.succeeded", "execution.failed"]
    assert (body["connector"], body["is_active"]) == (None, True)
    stored = WebhookEndpoint.objects.get()
    assert body["secret"] not in stored.secret
    shown = alice_api.get(f"{URL}/{body['id']}/").json()
    assert "secret" not in shown
    assert alice_api.get(URL).json()["count"] == 1


def test_connector_filter_must_be_a_connector_of_the_workspace(alice_api, acme, globex):
    mine, theirs = ConnectorFactory(workspace=acme), ConnectorFactory(workspace=globex)
    assert alice_api.post(URL, {**BODY, "connector": str(mine.id)}, format="json").json()["connector"] == str(mine.id)
    response = alice_api.post(URL, {**BODY, "connector": str(theirs.id)}, format="json")
    assert response.status_code == 400
    assert response.json() == {"connector": ["No such connector in this workspace."]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**BODY, "url": "ftp://receiver.example/x"}, "url"),
        ({**BODY, "url": "javascript:alert(1)"}, "url"),
        ({**BODY, "url": "https://"}, "url"),
        ({**BODY, "url": "https://exa mple.com/"}, "url"),
        ({**BODY, "events": []}, "events"),
        ({**BODY, "events": ["execution.started"]}, "events"),
        ({"events": ["execution.failed"]}, "url"),
    ],
)
def test_bad_endpoint_is_400_and_creates_nothing(alice_api, payload, field):
    response = alice_api.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not WebhookEndpoint.objects.exists()


def test_members_read_but_only_owners_and_admins_write(acme, alice_api):
    endpoint_id = alice_api.post(URL, BODY, format="json").json()["id"]
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    member = client_for(carol, acme)
    assert member.get(URL).status_code == 200
    assert member.get(f"{URL}/{endpoint_id}/deliveries").status_code == 200
    assert member.post(URL, BODY, format="json").status_code == 403
    assert member.patch(f"{URL}/{endpoint_id}", {"is_active": False}, format="json").status_code == 403
    assert member.delete(f"{URL}/{endpoint_id}").status_code == 403
    assert member.post(f"{URL}/{endpoint_id}/test").status_code == 403


def test_patch_and_delete(alice_api):
    endpoint_id = alice_api.post(URL, BODY, format="json").json()["id"]
    patched = alice_api.patch(
        f"{URL}/{endpoint_id}", {"is_active": False, "events": ["execution.cancelled"]}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["is_active"], patched.json()["events"]) == (False, ["execution.cancelled"])
    assert alice_api.patch(f"{URL}/{endpoint_id}", {"events": []}, format="json").status_code == 400
    assert alice_api.delete(f"{URL}/{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_send_test_queues_a_signed_test_delivery(alice_api):
    endpoint_id = alice_api.post(URL, BODY, format="json").json()["id"]
    response = alice_api.post(f"{URL}/{endpoint_id}/test")
    assert response.status_code == 202
    assert response.json()["event"] == "webhook.test"
    assert response.json()["status"] == "pending"
    listed = alice_api.get(f"{URL}/{endpoint_id}/deliveries").json()
    assert [d["id"] for d in listed["results"]] == [response.json()["id"]]
    assert set(listed["results"][0]) == {
        "id",
        "event",
        "execution",
        "status",
        "attempts",
        "response_status_code",
        "last_attempt_at",
        "next_attempt_at",
    }


def test_another_workspace_cannot_see_or_touch_an_endpoint(alice_api, bob_api):
    endpoint_id = alice_api.post(URL, BODY, format="json").json()["id"]
    for response in (
        bob_api.get(f"{URL}/{endpoint_id}"),
        bob_api.get(f"{URL}/{endpoint_id}/deliveries"),
        bob_api.patch(f"{URL}/{endpoint_id}", {"is_active": False}, format="json"),
        bob_api.post(f"{URL}/{endpoint_id}/test"),
        bob_api.delete(f"{URL}/{endpoint_id}"),
    ):
        assert response.status_code == 404
    assert bob_api.get(URL).json()["count"] == 0
    assert WebhookEndpoint.objects.get().is_active is True
    assert not WebhookDelivery.objects.exists()
