"""Errors (docs/api.md §13): every error under /api/ is JSON, bad input is never a 500, oversized bodies get 413."""

import json

import pytest

from connectors.models import Connector
from contacts.models import Contact

TWO_MIB = 2 * 1024 * 1024


def post_raw(client, path, body, content_type="application/json"):
    return client.post(path, data=body, content_type=content_type)


def assert_json_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


# --- malformed bodies ---


@pytest.mark.parametrize(
    "body",
    ['{"name": "Lookup", "steps": [', "{bad json}", "nul", '{"name": NaN}', b"\xff\xfe{"],
    ids=["truncated", "unquoted", "bare-word", "nan", "not-utf8"],
)
def test_malformed_json_body_gets_400_json(alice_api, body):
    response = post_raw(alice_api, "/api/v1/connectors", body)

    detail = assert_json_error(response, 400)["detail"]
    assert detail.startswith("JSON parse error")
    assert Connector.objects.count() == 0


def test_malformed_json_to_an_open_endpoint_gets_400_json(anon_api, db):
    response = post_raw(anon_api, "/api/v1/auth/register", "{bad")

    assert assert_json_error(response, 400)["detail"].startswith("JSON parse error")


def test_deeply_nested_json_gets_400_not_500(alice_api):
    response = post_raw(alice_api, "/api/v1/connectors", "[" * 100_000 + "]" * 100_000)

    assert assert_json_error(response, 400)["detail"].startswith("JSON parse error")


def test_json_nested_beyond_the_limit_but_parseable_gets_400(alice_api):
    body = {"name": "Deep", "steps": [{"name": "a", "url": "https://x.example", "body_type": "json", "body": []}]}
    nested: list = []
    body["steps"][0]["body"] = nested
    for _ in range(500):
        nested.append([])
        nested = nested[0]

    response = post_raw(alice_api, "/api/v1/connectors", json.dumps(body))

    assert assert_json_error(response, 400)["detail"].startswith("JSON parse error")
    assert Connector.objects.count() == 0


def test_form_encoded_body_gets_415_json(alice_api):
    response = post_raw(alice_api, "/api/v1/contacts", "email=a%40b.test", "application/x-www-form-urlencoded")

    assert set(assert_json_error(response, 415)) == {"detail"}
    assert Contact.objects.count() == 0


# --- wrong types ---


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/connectors", [1, 2]),
        ("/api/v1/connectors", "a string"),
        ("/api/v1/contacts", 5),
        ("/api/v1/workspaces", None),
    ],
)
def test_body_that_is_not_an_object_gets_400(alice_api, path, body):
    response = post_raw(alice_api, path, json.dumps(body))

    assert list(assert_json_error(response, 400)) == ["non_field_errors"]


def test_wrong_field_types_get_400_naming_each_field(alice_api):
    body = {"name": ["Lookup"], "is_active": "sometimes", "max_duration_seconds": "long", "steps": "fetch"}

    response = alice_api.post("/api/v1/connectors", body, format="json")

    errors = assert_json_error(response, 400)
    assert set(errors) == {"name", "is_active", "max_duration_seconds", "steps"}
    assert Connector.objects.count() == 0


def test_wrong_types_on_contacts_get_400(alice_api):
    response = alice_api.post("/api/v1/contacts", {"phone_valid": "perhaps", "custom_fields": [1]}, format="json")

    assert set(assert_json_error(response, 400)) == {"phone_valid", "custom_fields"}


def test_token_with_a_list_body_gets_400(anon_api, db):
    response = post_raw(anon_api, "/api/v1/auth/token", "[1]")

    assert list(assert_json_error(response, 400)) == ["non_field_errors"]


def test_null_character_in_a_string_gets_400_not_500(alice_api):
    response = alice_api.post("/api/v1/contacts", {"first_name": "a\u0000b"}, format="json")

    assert assert_json_error(response, 400) == {"first_name": ["Null characters are not allowed."]}


def test_null_character_deep_in_custom_fields_gets_400_not_500(alice_api):
    response = alice_api.post("/api/v1/contacts", {"custom_fields": {"note": "x\u0000"}}, format="json")

    assert_json_error(response, 400)
    assert Contact.objects.count() == 0


def test_huge_integer_gets_400(alice_api):
    step = {"name": "a", "url": "https://x.example", "timeout_seconds": 10**40}

    response = alice_api.post("/api/v1/connectors", {"name": "Big", "steps": [step]}, format="json")

    assert list(assert_json_error(response, 400)["steps"][0]) == ["timeout_seconds"]


# --- unknown paths and methods ---


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/nope/", "/api/nope", "/api/v1/connectors/not-a-uuid", "/api/v2/connectors"]
)
def test_unknown_api_path_gets_404_json(alice_api, path):
    response = alice_api.get(path)

    assert set(assert_json_error(response, 404)) == {"detail"}
    assert b"<html" not in response.content.lower()


def test_unknown_api_path_gets_404_json_without_authentication(anon_api, db):
    response = anon_api.get("/api/v1/nope")

    assert set(assert_json_error(response, 404)) == {"detail"}


def test_page_past_the_end_gets_404_json(alice_api):
    assert set(assert_json_error(alice_api.get("/api/v1/contacts", {"page": 5}), 404)) == {"detail"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/v1/workspaces"),
        ("put", "/api/v1/workspaces"),
        ("get", "/api/v1/auth/token"),
        ("delete", "/api/v1/auth/register"),
        ("put", "/api/v1/connectors"),
    ],
)
def test_method_not_allowed_gets_405_json(alice_api, method, path):
    response = getattr(alice_api, method)(path)

    body = assert_json_error(response, 405)
    assert body == {"detail": f'Method "{method.upper()}" not allowed.'}
    assert response["Allow"]


def test_put_on_a_member_gets_405_json(alice_api, alice, acme):
    response = alice_api.put(f"/api/v1/workspaces/{acme.id}/members/{alice.id}", {"role": "owner"}, format="json")

    assert set(assert_json_error(response, 405)) == {"detail"}


# --- size limit ---


def test_body_over_2_mib_gets_413_json(alice_api):
    body = json.dumps({"name": "Big", "description": "x" * TWO_MIB, "steps": []})

    response = post_raw(alice_api, "/api/v1/connectors", body)

    assert set(assert_json_error(response, 413)) == {"detail"}
    assert Connector.objects.count() == 0


def test_body_over_2_mib_gets_413_even_unauthenticated(anon_api, db):
    response = post_raw(anon_api, "/api/v1/auth/register", "x" * (TWO_MIB + 1))

    assert set(assert_json_error(response, 413)) == {"detail"}


def test_body_just_under_the_limit_is_parsed(alice_api):
    filler = "x" * (TWO_MIB - 200)
    body = json.dumps({"custom_fields": {"note": filler}})

    response = post_raw(alice_api, "/api/v1/contacts", body)

    assert response.status_code == 201


# --- every error is JSON ---


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("anon", "/api/v1/connectors", 401),
        ("alice", "/api/v1/connectors/00000000-0000-0000-0000-000000000000", 404),
        ("alice", "/api/v1/admin/stats", 403),
        ("alice", "/api/v1/nowhere", 404),
        ("alice", "/api/v1/connectors?is_active=perhaps", 400),
    ],
)
def test_every_api_error_on_get_is_application_json(alice_api, anon_api, who, path, status):
    client = alice_api if who == "alice" else anon_api

    response = client.get(path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"),
    [
        ("anon", "post", "/api/v1/auth/token", '{"email": "x@y.test", "password": "wrong-one"}', 401),
        ("anon", "post", "/api/v1/auth/token/refresh", '{"refresh": "garbage"}', 401),
        ("alice", "patch", "/api/v1/workspaces", "{}", 405),
        ("alice", "post", "/api/v1/connectors", "{}", 400),
        ("alice", "post", "/api/v1/connectors", "x" * (TWO_MIB + 1), 413),
        ("alice", "post", "/api/v1/connectors", "{", 400),
        ("alice", "post", "/api/v1/connector-templates", "{}", 403),
    ],
)
def test_every_api_error_with_a_body_is_application_json(alice_api, anon_api, who, method, path, body, status):
    client = alice_api if who == "alice" else anon_api

    response = getattr(client, method)(path, data=body, content_type="application/json")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)
