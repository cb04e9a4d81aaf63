"""API keys (docs/api.md, "API keys"): issued once, hashed, scoped to their workspace and role."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import client_for
from tests.factories import ConnectorFactory, MembershipFactory, UserFactory
from workspaces import api_keys
from workspaces.models import ApiKey, Role

URL = "/api/v1/workspace/api-keys"


def key_client(key: str, workspace=None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    if workspace is not None:
        client.defaults["HTTP_X_WORKSPACE_ID"] = str(workspace.id)
    return client


@pytest.fixture
def issued(alice_api):
    response = alice_api.post(URL, {"name": "backend", "role": "admin"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_key_once_and_stores_only_a_hash(issued, alice_api):
    assert set(issued) == {"id", "name", "prefix", "key", "role", "created_at", "expires_at", "last_used_at"}
    assert issued["key"].startswith("cnk_")
    assert len(issued["key"]) == 4 + 43
    assert issued["prefix"] == issued["key"][:12]
    assert (issued["role"], issued["last_used_at"], issued["expires_at"]) == ("admin", None, None)
    stored = ApiKey.objects.get(pk=issued["id"])
    assert issued["key"] not in str(stored.__dict__)
    assert stored.key_hash == api_keys.key_hash(issued["key"])

    listed = alice_api.get(URL + "/").json()
    assert listed["count"] == 1
    assert "key" not in listed["results"][0]
    assert listed["results"][0]["prefix"] == issued["prefix"]


def test_role_defaults_to_member_and_owner_is_refused(alice_api):
    assert alice_api.post(URL, {"name": "k"}, format="json").json()["role"] == "member"
    response = alice_api.post(URL, {"name": "k", "role": "owner"}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()


def test_expiry_in_the_past_is_400_and_creates_nothing(alice_api):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = alice_api.post(URL, {"name": "k", "expires_at": past}, format="json")
    assert response.status_code == 400
    assert response.json() == {"expires_at": ["Must be in the future."]}
    assert ApiKey.objects.count() == 0


def test_plain_members_cannot_manage_keys(acme, alice_api):
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    client = client_for(carol, acme)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "k"}, format="json").status_code == 403
    assert ApiKey.objects.count() == 0


def test_a_key_acts_in_its_own_workspace_without_the_header(issued, acme):
    connector = ConnectorFactory(workspace=acme)
    response = key_client(issued["key"]).get("/api/v1/connectors")
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [str(connector.id)]


def test_a_key_naming_another_workspace_is_403(issued, globex, bob):
    response = key_client(issued["key"], globex).get("/api/v1/connectors")
    assert response.status_code == 403


def test_a_key_never_sees_another_workspaces_objects(issued, globex):
    theirs = ConnectorFactory(workspace=globex)
    client = key_client(issued["key"])
    assert client.get(f"/api/v1/connectors/{theirs.id}").status_code == 404
    assert client.get("/api/v1/connectors").json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/workspaces"),
        ("post", "/api/v1/workspaces"),
        ("get", "/api/v1/workspace/api-keys"),
        ("post", "/api/v1/workspace/api-keys"),
        ("post", "/api/v1/auth/password"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/token"),
        ("get", "/api/v1/admin/stats"),
        ("get", "/api/v1/connector-templates"),
    ],
)
def test_a_key_cannot_reach_people_only_endpoints(issued, method, path):
    response = getattr(key_client(issued["key"]), method)(path, {}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["detail"]


def test_a_key_cannot_reach_members_or_revoke_keys(issued, acme):
    client = key_client(issued["key"])
    assert client.get(f"/api/v1/workspaces/{acme.id}/members").status_code == 403
    assert client.delete(f"{URL}/{issued['id']}").status_code == 403
    assert ApiKey.objects.get(pk=issued["id"]).revoked_at is None


def test_member_key_cannot_write_credentials_but_admin_key_can(acme, alice_api):
    member_key = alice_api.post(URL, {"name": "m"}, format="json").json()["key"]
    admin_key = alice_api.post(URL, {"name": "a", "role": "admin"}, format="json").json()["key"]
    body = {"service_name": "svc", "credentials": {"token": "t"}}
    assert key_client(member_key).post("/api/v1/workspace/credentials", body, format="json").status_code == 403
    assert key_client(admin_key).post("/api/v1/workspace/credentials", body, format="json").status_code == 201


def test_revoked_key_stops_at_once_and_leaves_the_list(issued, alice_api):
    client = key_client(issued["key"])
    assert client.get("/api/v1/connectors").status_code == 200
    assert alice_api.delete(f"{URL}/{issued['id']}/").status_code == 204
    response = client.get("/api/v1/connectors")
    assert response.status_code == 401
    assert alice_api.get(URL).json()["count"] == 0
    assert alice_api.delete(f"{URL}/{issued['id']}").status_code == 404


def test_unknown_and_expired_keys_are_401(issued):
    assert key_client("cnk_" + "x" * 43).get("/api/v1/connectors").status_code == 401
    ApiKey.objects.filter(pk=issued["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert key_client(issued["key"]).get("/api/v1/connectors").status_code == 401


def test_last_used_is_set_on_first_use_then_at_most_once_a_minute(issued, django_assert_num_queries):
    client = key_client(issued["key"])
    client.get("/api/v1/connectors")
    first = ApiKey.objects.get(pk=issued["id"]).last_used_at
    assert first is not None
    client.get("/api/v1/connectors")
    assert ApiKey.objects.get(pk=issued["id"]).last_used_at == first
    ApiKey.objects.filter(pk=issued["id"]).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/connectors")
    assert ApiKey.objects.get(pk=issued["id"]).last_used_at > first


def test_another_workspaces_owner_cannot_revoke_a_key(issued, bob_api):
    assert bob_api.delete(f"{URL}/{issued['id']}").status_code == 404
    assert ApiKey.objects.get(pk=issued["id"]).revoked_at is None


def test_keys_are_throttled_like_members(issued, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    client = key_client(issued["key"])
    assert client.get("/api/v1/connectors").status_code == 200
