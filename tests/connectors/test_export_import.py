"""Export and import: a portable `connector/v1` document without ids, workspace, counters or secrets."""

import json

import pytest

from connectors.models import Connector, ConnectorVersion
from credentials.services import credential_upsert
from tests.factories import normalized_step

URL = "/api/v1/connectors"
LITERAL_SECRET = "sk_live_literal_4Rt9"
DEFINITION = {
    "name": "Phone validation",
    "description": "Validate a phone number",
    "input_schema": {"type": "object", "required": ["phone"], "properties": {"phone": {"type": "string"}}},
    "max_duration_seconds": 120,
    "steps": [
        {
            "name": "validate",
            "url": "https://apilayer.net/api/validate",
            "query": {"number": "{{input.phone}}"},
            "auth": {
                "type": "api_key",
                "in": "query",
                "name": "access_key",
                "value": "{{workspace.numverify.api_key}}",
            },
            "extract": {"valid": "valid", "carrier": "carrier"},
        },
        {
            "name": "notify",
            "method": "POST",
            "url": "https://hooks.example.com/{{workspace.slack.path}}",
            "body_type": "json",
            "body": {"text": "{{steps.validate.carrier}}"},
        },
    ],
    "contact_mapping": {"phone_valid": "{{steps.validate.valid}}"},
}


def create(api, definition=DEFINITION) -> dict:
    response = api.post(URL, definition, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def export(api, connector_id) -> dict:
    response = api.get(f"{URL}/{connector_id}/export")
    assert response.status_code == 200, response.content
    return response.json()


def test_export_is_the_portable_document(alice_api):
    connector = create(alice_api)

    document = export(alice_api, connector["id"])

    assert document == {
        "format": "connector/v1",
        "connector": {
            "name": "Phone validation",
            "description": "Validate a phone number",
            "input_schema": DEFINITION["input_schema"],
            "max_duration_seconds": 120,
            "steps": [normalized_step(step) for step in DEFINITION["steps"]],
            "contact_mapping": DEFINITION["contact_mapping"],
        },
        "required_credentials": ["numverify", "slack"],
    }
    text = json.dumps(document)
    assert connector["id"] not in text
    assert connector["workspace"] not in text


def test_export_then_import_round_trips(alice_api, bob_api):
    connector = create(alice_api)
    document = export(alice_api, connector["id"])

    imported = bob_api.post(f"{URL}/import", document, format="json")

    assert imported.status_code == 201, imported.content
    body = imported.json()
    assert body["id"] != connector["id"]
    assert (body["version"], body["template"], body["is_active"]) == (1, None, True)
    assert body["stats"]["total_executions"] == 0
    assert body["missing_credentials"] == ["numverify", "slack"]
    assert export(bob_api, body["id"]) == document
    for field in ("name", "description", "input_schema", "max_duration_seconds", "steps", "contact_mapping"):
        assert body[field] == connector[field]


def test_import_reports_only_the_credentials_still_missing(alice_api, acme):
    document = export(alice_api, create(alice_api)["id"])
    credential_upsert(workspace=acme, service_name="slack", fields={"path": "T000/B000"})

    body = alice_api.post(f"{URL}/import/", document, format="json").json()

    assert body["missing_credentials"] == ["numverify"]


def test_import_records_version_1_made_by_the_importer(alice_api, alice):
    document = export(alice_api, create(alice_api)["id"])

    body = alice_api.post(f"{URL}/import", document, format="json").json()

    version = ConnectorVersion.objects.get(connector_id=body["id"])
    assert (version.version, version.created_by) == (1, alice)


def test_literal_secrets_are_never_exported(alice_api):
    definition = {
        "name": "Literal",
        "steps": [
            {
                "name": "call",
                "url": "https://api.example.com/x",
                "headers": {"X-Api-Key": LITERAL_SECRET, "Accept": "application/json"},
                "query": {"api_key": LITERAL_SECRET, "page": "1"},
                "auth": {"type": "basic", "username": "admin", "password": LITERAL_SECRET},
            },
            {
                "name": "bearer",
                "url": "https://api.example.com/y",
                "auth": {"type": "bearer", "token": "{{workspace.crm.token}}"},
            },
        ],
    }
    connector = create(alice_api, definition)

    document = export(alice_api, connector["id"])

    assert LITERAL_SECRET not in json.dumps(document)
    call, bearer = document["connector"]["steps"]
    assert call["headers"] == {"X-Api-Key": "{{workspace.call.X-Api-Key}}", "Accept": "application/json"}
    assert call["query"] == {"api_key": "{{workspace.call.api_key}}", "page": "1"}
    assert call["auth"] == {
        "type": "basic",
        "username": "{{workspace.call.username}}",
        "password": "{{workspace.call.password}}",
    }
    assert bearer["auth"] == {"type": "bearer", "token": "{{workspace.crm.token}}"}
    assert document["required_credentials"] == ["call", "crm"]
    imported = alice_api.post(f"{URL}/import", document, format="json")
    assert imported.status_code == 201, imported.content
    assert imported.json()["missing_credentials"] == ["call", "crm"]


@pytest.mark.parametrize("fmt", ["connector/v2", "", None, 1])
def test_another_format_gets_400(alice_api, fmt):
    document = export(alice_api, create(alice_api)["id"])
    count = Connector.objects.count()

    response = alice_api.post(f"{URL}/import", {**document, "format": fmt}, format="json")

    assert response.status_code == 400
    assert "connector/v1" in response.json()["format"][0]
    assert Connector.objects.count() == count


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("document", "credentials"),
        ("document", "secrets"),
        ("document", "api_key"),
        ("connector", "password"),
        ("connector", "auth_token"),
        ("connector", "credentials"),
    ],
)
def test_secret_looking_extra_fields_get_400(alice_api, where, field):
    document = export(alice_api, create(alice_api)["id"])
    if where == "document":
        document[field] = {"numverify": {"api_key": "sk_live_x"}}
    else:
        document["connector"][field] = "sk_live_x"
    count = Connector.objects.count()

    response = alice_api.post(f"{URL}/import", document, format="json")

    assert response.status_code == 400
    errors = response.json() if where == "document" else response.json()["connector"]
    assert errors[field][0].startswith("Secrets are never imported")
    assert "sk_live_x" not in response.content.decode()
    assert Connector.objects.count() == count


@pytest.mark.parametrize("field", ["id", "workspace", "version", "stats"])
def test_other_extra_fields_get_400(alice_api, field):
    document = export(alice_api, create(alice_api)["id"])
    document["connector"][field] = "x"

    response = alice_api.post(f"{URL}/import", document, format="json")

    assert response.status_code == 400
    assert response.json()["connector"] == {field: ["Unknown field."]}


def test_an_invalid_definition_gets_400_as_when_saving(alice_api):
    document = export(alice_api, create(alice_api)["id"])
    document["connector"]["steps"][1]["url"] = "ftp://example.com"

    response = alice_api.post(f"{URL}/import", document, format="json")

    assert response.status_code == 400
    assert set(response.json()["connector"]["steps"][1]) == {"url"}


@pytest.mark.parametrize(
    "body", [[], "connector/v1", {"format": "connector/v1"}, {"format": "connector/v1", "connector": []}]
)
def test_a_malformed_document_gets_400(alice_api, body):
    response = alice_api.post(f"{URL}/import", body, format="json")

    assert response.status_code == 400


def test_bad_required_credentials_get_400(alice_api):
    document = export(alice_api, create(alice_api)["id"])

    response = alice_api.post(f"{URL}/import", {**document, "required_credentials": ["Not A Service"]}, format="json")

    assert response.status_code == 400
    assert "required_credentials" in response.json()
