import pytest

from credentials.models import Credential
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Role

URL = "/api/v1/workspace/credentials"
SECRET = "sk_live_9f8e7d6c5b4a"
OTHER_SECRET = "sk_live_0a1b2c3d4e5f"


def store(client, service_name="numverify", credentials=None):
    body = {"service_name": service_name, "credentials": credentials or {"api_key": SECRET}}
    return client.post(URL, body, format="json")


@pytest.fixture
def member_api(acme):
    user = UserFactory(email="mallory@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.MEMBER)
    return client_for(user, acme)


@pytest.fixture
def admin_api(acme):
    user = UserFactory(email="adam@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.ADMIN)
    return client_for(user, acme)


def test_owner_stores_a_credential_and_gets_201_with_names_only(alice_api, acme):
    response = store(alice_api, credentials={"api_key": SECRET, "account": "acme-eu"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "service_name",
        "type",
        "fields",
        "rate_limit",
        "token_expires_at",
        "created_at",
        "updated_at",
        "last_used_at",
    }
    assert (body["type"], body["rate_limit"], body["token_expires_at"]) == ("static", None, None)
    assert body["service_name"] == "numverify"
    assert body["fields"] == ["account", "api_key"]
    assert body["last_used_at"] is None
    assert SECRET.encode() not in response.content
    assert Credential.objects.get(workspace=acme).field_names == ["account", "api_key"]


def test_list_is_paginated_and_holds_no_values(alice_api):
    store(alice_api, "numverify")
    store(alice_api, "hunter", {"token": OTHER_SECRET})

    response = alice_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert [(item["service_name"], item["fields"]) for item in body["results"]] == [
        ("hunter", ["token"]),
        ("numverify", ["api_key"]),
    ]
    assert SECRET.encode() not in response.content
    assert OTHER_SECRET.encode() not in response.content


def test_list_honours_page_size(alice_api):
    for name in ["a1", "a2", "a3"]:
        store(alice_api, name)

    body = alice_api.get(URL, {"page_size": 2}).json()

    assert body["count"] == 3
    assert [item["service_name"] for item in body["results"]] == ["a1", "a2"]
    assert body["next"].endswith("page=2&page_size=2")


def test_replacing_returns_200_and_changes_the_ciphertext(alice_api, acme):
    store(alice_api)
    before = Credential.objects.get(workspace=acme)

    response = store(alice_api, credentials={"token": OTHER_SECRET})

    assert response.status_code == 200
    assert response.json()["fields"] == ["token"]
    assert OTHER_SECRET.encode() not in response.content
    after = Credential.objects.get(workspace=acme)
    assert after.pk == before.pk
    assert after.ciphertext != before.ciphertext
    assert after.field_names == ["token"]
    assert after.created_at == before.created_at
    assert after.updated_at > before.updated_at


def test_check_says_whether_a_credential_exists(alice_api):
    store(alice_api)

    present = alice_api.get(f"{URL}/check/numverify")
    absent = alice_api.get(f"{URL}/check/hunter")

    assert present.status_code == 200
    assert present.json() == {"service_name": "numverify", "exists": True}
    assert SECRET.encode() not in present.content
    assert absent.json() == {"service_name": "hunter", "exists": False}


def test_retrieve_returns_names_only(alice_api):
    store(alice_api)

    response = alice_api.get(f"{URL}/numverify")

    assert response.status_code == 200
    assert response.json()["fields"] == ["api_key"]
    assert SECRET.encode() not in response.content


def test_delete_returns_204_then_404(alice_api, acme):
    store(alice_api)

    first = alice_api.delete(f"{URL}/numverify")
    second = alice_api.delete(f"{URL}/numverify")

    assert first.status_code == 204
    assert second.status_code == 404
    assert not Credential.objects.filter(workspace=acme).exists()


def test_paths_work_with_a_trailing_slash(alice_api):
    assert (
        alice_api.post(f"{URL}/", {"service_name": "s1", "credentials": {"k": "v"}}, format="json").status_code == 201
    )
    assert alice_api.get(f"{URL}/").json()["count"] == 1
    assert alice_api.get(f"{URL}/check/s1/").json() == {"service_name": "s1", "exists": True}
    assert alice_api.get(f"{URL}/s1/").status_code == 200
    assert alice_api.delete(f"{URL}/s1/").status_code == 204


def test_member_can_list_and_check(alice_api, member_api):
    store(alice_api)

    listed = member_api.get(URL)
    checked = member_api.get(f"{URL}/check/numverify")

    assert listed.status_code == 200
    assert [item["service_name"] for item in listed.json()["results"]] == ["numverify"]
    assert checked.json() == {"service_name": "numverify", "exists": True}


def test_member_cannot_store_a_credential(member_api, acme):
    response = store(member_api)

    assert response.status_code == 403
    assert SECRET.encode() not in response.content
    assert not Credential.objects.filter(workspace=acme).exists()


def test_member_cannot_replace_or_delete_a_credential(alice_api, member_api, acme):
    store(alice_api)
    before = Credential.objects.get(workspace=acme)

    replaced = store(member_api, credentials={"api_key": OTHER_SECRET})
    deleted = member_api.delete(f"{URL}/numverify")

    assert replaced.status_code == 403
    assert deleted.status_code == 403
    assert Credential.objects.get(workspace=acme).ciphertext == before.ciphertext


def test_admin_can_store_and_delete(admin_api, acme):
    assert store(admin_api).status_code == 201
    assert admin_api.delete(f"{URL}/numverify").status_code == 204


def test_other_workspace_neither_sees_nor_deletes(alice_api, bob_api, acme):
    store(alice_api)

    assert bob_api.get(URL).json()["count"] == 0
    assert bob_api.get(f"{URL}/check/numverify").json() == {"service_name": "numverify", "exists": False}
    assert bob_api.get(f"{URL}/numverify").status_code == 404
    assert bob_api.delete(f"{URL}/numverify").status_code == 404
    assert Credential.objects.filter(workspace=acme, service_name="numverify").exists()


def test_same_service_name_in_two_workspaces_is_two_credentials(alice_api, bob_api):
    assert store(alice_api).status_code == 201
    assert store(bob_api, credentials={"api_key": OTHER_SECRET}).status_code == 201
    assert Credential.objects.filter(service_name="numverify").count() == 2


def test_a_workspace_the_caller_is_not_in_gets_403(alice, globex):
    response = client_for(alice, globex).get(URL)

    assert response.status_code == 403


def test_anonymous_gets_401(anon_api):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(URL, {}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "error_key"),
    [
        ({"service_name": "Numverify", "credentials": {"api_key": SECRET}}, "service_name"),
        ({"service_name": "-numverify", "credentials": {"api_key": SECRET}}, "service_name"),
        ({"service_name": "a" * 65, "credentials": {"api_key": SECRET}}, "service_name"),
        ({"service_name": "", "credentials": {"api_key": SECRET}}, "service_name"),
        ({"credentials": {"api_key": SECRET}}, "service_name"),
        ({"service_name": "numverify"}, "credentials"),
        ({"service_name": "numverify", "credentials": {}}, "credentials"),
        ({"service_name": "numverify", "credentials": [SECRET]}, "credentials"),
        ({"service_name": "numverify", "credentials": SECRET}, "credentials"),
        ({"service_name": "numverify", "credentials": {"api.key": SECRET}}, "credentials"),
        ({"service_name": "numverify", "credentials": {"-key": SECRET}}, "credentials"),
        ({"service_name": "numverify", "credentials": {f"k{i}": SECRET for i in range(51)}}, "credentials"),
        ({"service_name": "numverify", "credentials": {"api_key": SECRET}, "secret": "x"}, "secret"),
    ],
)
def test_invalid_input_is_refused_with_400_and_nothing_is_stored(alice_api, acme, body, error_key):
    response = alice_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert error_key in response.json()
    assert SECRET.encode() not in response.content
    assert not Credential.objects.filter(workspace=acme).exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "May not be empty or blank."),
        ("   ", "May not be empty or blank."),
        (987654321, "Must be a string."),
        (["sk_live_in_a_list"], "Must be a string."),
        ({"nested": "sk_live_nested"}, "Must be a string."),
        (None, "Must be a string."),
        (True, "Must be a string."),
        ("sk_live_" + "x" * 8192, "At most 8192 bytes (UTF-8)."),
    ],
)
def test_a_bad_value_is_refused_without_echoing_it(alice_api, acme, value, message):
    response = alice_api.post(
        URL, {"service_name": "numverify", "credentials": {"api_key": value, "other": SECRET}}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"credentials": {"api_key": [message]}}
    assert b"987654321" not in response.content
    assert b"sk_live" not in response.content
    assert not Credential.objects.filter(workspace=acme).exists()


def test_values_of_exactly_8_kib_are_accepted(alice_api):
    assert store(alice_api, credentials={"api_key": "é" * 4096}).status_code == 201


def test_fifty_fields_are_accepted(alice_api):
    response = store(alice_api, credentials={f"k{i:02d}": SECRET for i in range(50)})

    assert response.status_code == 201
    assert len(response.json()["fields"]) == 50


def test_body_that_is_not_an_object_is_refused(alice_api):
    response = alice_api.post(URL, [SECRET], format="json")

    assert response.status_code == 400
    assert SECRET.encode() not in response.content


def test_schema_documents_the_credentials_endpoints(anon_api):
    paths = anon_api.get("/api/schema/", {"format": "json"}).json()["paths"]

    assert set(paths["/api/v1/workspace/credentials/"]) >= {"get", "post"}
    assert set(paths["/api/v1/workspace/credentials/{service_name}/"]) >= {"delete"}
    assert set(paths["/api/v1/workspace/credentials/check/{service_name}/"]) >= {"get"}
    assert set(paths["/api/v1/workspace/credentials/"]["post"]["responses"]) == {"200", "201"}
