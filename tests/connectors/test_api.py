"""Connectors CRUD (docs/api.md §4, §5): defaults filled in, representation, list filters, versioning."""

import pytest

from connectors.models import Connector
from tests.factories import ConnectorFactory

URL = "/api/v1/connectors"

STEP = {"name": "validate", "url": "https://apilayer.net/api/validate"}
DEFAULT_STEP = {
    "name": "validate",
    "method": "GET",
    "url": "https://apilayer.net/api/validate",
    "headers": {},
    "query": {},
    "auth": {"type": "none"},
    "body_type": "none",
    "body": None,
    "content_type": None,
    "timeout_seconds": 30,
    "response_type": "auto",
    "extract": {},
    "continue_on_error": False,
    "retry": {"max_attempts": 3},
}
FULL_DEFINITION = {
    "name": "Phone validation",
    "description": "Validate a phone number with Numverify",
    "is_active": True,
    "input_schema": {"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}},
    "max_duration_seconds": 300,
    "steps": [
        {
            "name": "validate",
            "method": "GET",
            "url": "https://apilayer.net/api/validate",
            "query": {"number": "{{input.phone}}"},
            "headers": {"Accept": "application/json"},
            "auth": {
                "type": "api_key",
                "in": "query",
                "name": "access_key",
                "value": "{{workspace.numverify.api_key}}",
            },
            "body_type": "none",
            "body": None,
            "timeout_seconds": 10,
            "response_type": "json",
            "extract": {"valid": "valid", "carrier": "carrier", "country": "country_name"},
            "continue_on_error": False,
            "retry": {"max_attempts": 3},
        }
    ],
    "contact_mapping": {
        "phone_valid": "{{steps.validate.valid}}",
        "custom_fields.carrier": "{{steps.validate.carrier}}",
    },
}
REPRESENTATION_KEYS = {
    "id",
    "workspace",
    "name",
    "description",
    "is_active",
    "input_schema",
    "max_duration_seconds",
    "steps",
    "contact_mapping",
    "template",
    "template_version",
    "template_update_available",
    "version",
    "stats",
    "created_at",
    "updated_at",
}


def create(client, **fields) -> dict:
    response = client.post(URL, {"name": "Lookup", "steps": [STEP], **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def detail(connector_id) -> str:
    return f"{URL}/{connector_id}"


# --- create ---


def test_create_returns_201_with_every_default_filled_in(alice_api, acme):
    response = alice_api.post(URL, {"name": "Lookup", "steps": [STEP]}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == REPRESENTATION_KEYS
    assert body["steps"] == [DEFAULT_STEP]
    assert body["description"] == ""
    assert body["is_active"] is True
    assert body["input_schema"] == {}
    assert body["max_duration_seconds"] == 300
    assert body["contact_mapping"] == {}


def test_create_returns_identity_template_link_version_and_stats(alice_api, acme):
    body = create(alice_api)

    connector = Connector.objects.get()
    assert body["id"] == str(connector.id)
    assert body["workspace"] == str(acme.id)
    assert body["template"] is None
    assert body["template_version"] is None
    assert body["template_update_available"] is False
    assert body["version"] == 1
    assert body["stats"] == {
        "total_executions": 0,
        "successful_executions": 0,
        "failed_executions": 0,
        "last_executed_at": None,
    }
    assert body["created_at"]
    assert body["updated_at"]


def test_create_stores_the_normalized_definition(alice_api, acme):
    create(alice_api)

    connector = Connector.objects.get()
    assert connector.workspace == acme
    assert connector.steps == [DEFAULT_STEP]


def test_create_keeps_the_documented_example_as_given(alice_api):
    response = alice_api.post(URL, FULL_DEFINITION, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {key: body[key] for key in FULL_DEFINITION if key != "steps"} == {
        key: value for key, value in FULL_DEFINITION.items() if key != "steps"
    }
    assert body["steps"] == [{**FULL_DEFINITION["steps"][0], "content_type": None}]


def test_create_ignores_read_only_fields(alice_api, acme, globex):
    body = create(alice_api, version=7, workspace=str(globex.id), stats={"total_executions": 9})

    assert body["version"] == 1
    assert body["workspace"] == str(acme.id)
    assert body["stats"]["total_executions"] == 0


def test_create_needs_a_name(alice_api):
    response = alice_api.post(URL, {"steps": [STEP]}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert Connector.objects.count() == 0


def test_create_needs_authentication(anon_api, db):
    assert anon_api.post(URL, {"name": "Lookup", "steps": [STEP]}, format="json").status_code == 401


# --- list ---


def test_list_is_paginated(alice_api, acme):
    ConnectorFactory.create_batch(3, workspace=acme)

    response = alice_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert len(body["results"]) == 3
    assert set(body["results"][0]) == REPRESENTATION_KEYS


def test_list_is_newest_first(alice_api, acme):
    ConnectorFactory(workspace=acme, name="First")
    ConnectorFactory(workspace=acme, name="Second")

    names = [item["name"] for item in alice_api.get(URL).json()["results"]]

    assert names == ["Second", "First"]


def test_list_honours_page_size_and_page(alice_api, acme):
    ConnectorFactory.create_batch(5, workspace=acme)

    first = alice_api.get(URL, {"page_size": 2}).json()
    last = alice_api.get(URL, {"page_size": 2, "page": 3}).json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"].endswith(f"{URL}?page=2&page_size=2")
    assert first["previous"] is None
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert last["previous"].endswith(f"{URL}?page=2&page_size=2")


def test_list_page_size_is_capped_at_100(alice_api, acme):
    ConnectorFactory.create_batch(101, workspace=acme)

    body = alice_api.get(URL, {"page_size": 500}).json()

    assert body["count"] == 101
    assert len(body["results"]) == 100


def test_list_page_past_the_end_gets_404(alice_api, acme):
    ConnectorFactory(workspace=acme)

    response = alice_api.get(URL, {"page": 9})

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_search_matches_name_or_description_case_insensitively(alice_api, acme):
    ConnectorFactory(workspace=acme, name="Phone validation")
    ConnectorFactory(workspace=acme, name="Enrich", description="Looks up a PHONE carrier")
    ConnectorFactory(workspace=acme, name="Email check")

    names = [item["name"] for item in alice_api.get(URL, {"search": "phone"}).json()["results"]]

    assert names == ["Enrich", "Phone validation"]


@pytest.mark.parametrize(("value", "expected"), [("true", ["On"]), ("false", ["Off"]), ("0", ["Off"])])
def test_is_active_filter(alice_api, acme, value, expected):
    ConnectorFactory(workspace=acme, name="On", is_active=True)
    ConnectorFactory(workspace=acme, name="Off", is_active=False)

    names = [item["name"] for item in alice_api.get(URL, {"is_active": value}).json()["results"]]

    assert names == expected


def test_is_active_filter_with_a_non_boolean_gets_400(alice_api, acme):
    response = alice_api.get(URL, {"is_active": "perhaps"})

    assert response.status_code == 400
    assert response.json() == {"is_active": ["Must be a valid boolean."]}


def test_search_and_is_active_combine(alice_api, acme):
    ConnectorFactory(workspace=acme, name="Phone on", is_active=True)
    ConnectorFactory(workspace=acme, name="Phone off", is_active=False)
    ConnectorFactory(workspace=acme, name="Email off", is_active=False)

    body = alice_api.get(URL, {"search": "phone", "is_active": "false"}).json()

    assert [item["name"] for item in body["results"]] == ["Phone off"]


# --- retrieve, update, delete ---


def test_get_returns_the_connector(alice_api):
    created = create(alice_api)

    response = alice_api.get(detail(created["id"]))

    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_id_gets_404(alice_api):
    response = alice_api.get(detail("3f2b9c1e-0000-4000-8000-000000000000"))

    assert response.status_code == 404


def test_put_replaces_the_definition(alice_api):
    created = create(alice_api, description="old", contact_mapping={"company": "{{input.company}}"})

    response = alice_api.put(
        detail(created["id"]),
        {"name": "Renamed", "steps": [{"name": "other", "url": "https://example.com/v2", "method": "POST"}]},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["description"] == ""
    assert body["contact_mapping"] == {}
    assert body["steps"] == [{**DEFAULT_STEP, "name": "other", "url": "https://example.com/v2", "method": "POST"}]
    assert body["version"] == 2
    assert body["created_at"] == created["created_at"]


def test_put_without_steps_gets_400(alice_api):
    created = create(alice_api)

    response = alice_api.put(detail(created["id"]), {"name": "Renamed"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["steps"]
    assert Connector.objects.get().name == "Lookup"


def test_patch_changes_only_the_named_fields(alice_api):
    created = create(alice_api, description="Looks things up")

    response = alice_api.patch(detail(created["id"]), {"name": "Renamed"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["description"] == "Looks things up"
    assert body["steps"] == [DEFAULT_STEP]
    assert Connector.objects.get().name == "Renamed"


def test_patch_steps_fills_in_defaults(alice_api):
    created = create(alice_api)

    response = alice_api.patch(
        detail(created["id"]),
        {"steps": [{"name": "validate", "url": STEP["url"], "timeout_seconds": 5}]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["steps"] == [{**DEFAULT_STEP, "timeout_seconds": 5}]


def test_patch_contact_mapping_is_checked_against_the_stored_steps(alice_api):
    created = create(alice_api)

    response = alice_api.patch(
        detail(created["id"]), {"contact_mapping": {"company": "{{steps.missing.name}}"}}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["contact_mapping"]) == ["company"]
    assert Connector.objects.get().contact_mapping == {}


def test_updated_at_moves_on_update(alice_api):
    created = create(alice_api)

    body = alice_api.patch(detail(created["id"]), {"name": "Renamed"}, format="json").json()

    assert body["updated_at"] > created["updated_at"]
    assert body["created_at"] == created["created_at"]


def test_delete_returns_204_and_removes_the_connector(alice_api):
    created = create(alice_api)

    response = alice_api.delete(detail(created["id"]))

    assert response.status_code == 204
    assert not Connector.objects.exists()
    assert alice_api.get(detail(created["id"])).status_code == 404


@pytest.mark.parametrize("slash", ["", "/"])
def test_connector_paths_answer_with_and_without_trailing_slash(alice_api, slash):
    created = alice_api.post(URL + slash, {"name": "Lookup", "steps": [STEP]}, format="json")
    path = detail(created.json()["id"]) + slash

    assert created.status_code == 201
    assert alice_api.get(URL + slash).status_code == 200
    assert alice_api.get(path).status_code == 200
    assert alice_api.patch(path, {"name": "x"}, format="json").status_code == 200
    assert alice_api.put(path, {"name": "y", "steps": [STEP]}, format="json").status_code == 200
    assert alice_api.delete(path).status_code == 204


# --- version ---


@pytest.mark.parametrize(
    "change",
    [
        {"steps": [{**STEP, "method": "POST"}]},
        {"steps": [STEP, {"name": "second", "url": "https://example.com/2"}]},
        {"input_schema": {"type": "object"}},
        {"contact_mapping": {"company": "{{input.company}}"}},
        {"max_duration_seconds": 60},
    ],
    ids=["steps-edited", "step-added", "input_schema", "contact_mapping", "max_duration_seconds"],
)
def test_version_increases_when_the_definition_changes(alice_api, change):
    created = create(alice_api)

    response = alice_api.patch(detail(created["id"]), change, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert Connector.objects.get().version == 2


@pytest.mark.parametrize(
    "change",
    [{"name": "Renamed"}, {"description": "New words"}, {"is_active": False}],
    ids=["name", "description", "is_active"],
)
def test_version_stays_when_only_name_description_or_is_active_change(alice_api, change):
    created = create(alice_api)

    response = alice_api.patch(detail(created["id"]), change, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert Connector.objects.get().version == 1


def test_version_stays_when_the_same_definition_is_sent_again(alice_api):
    created = create(alice_api)

    response = alice_api.put(detail(created["id"]), {"name": "Lookup", "steps": [STEP]}, format="json")

    assert response.json()["version"] == 1


def test_version_counts_every_definition_change(alice_api):
    created = create(alice_api)

    alice_api.patch(detail(created["id"]), {"max_duration_seconds": 60}, format="json")
    alice_api.patch(detail(created["id"]), {"max_duration_seconds": 90}, format="json")
    alice_api.patch(detail(created["id"]), {"name": "Renamed"}, format="json")
    body = alice_api.patch(detail(created["id"]), {"input_schema": {"type": "object"}}, format="json").json()

    assert body["version"] == 4


def test_invalid_update_does_not_bump_the_version(alice_api):
    created = create(alice_api)

    response = alice_api.patch(detail(created["id"]), {"max_duration_seconds": 0}, format="json")

    assert response.status_code == 400
    assert Connector.objects.get().version == 1
