"""Updating an installed connector from its template (POST /connectors/{id}/update-from-template)."""

from connectors.models import Connector, ConnectorVersion
from credentials.models import Credential
from templates_market.models import ConnectorTemplate
from tests.factories import ConnectorFactory, normalized_definition

from .conftest import definition

TEMPLATES = "/api/v1/connector-templates"
CONNECTORS = "/api/v1/connectors"
REQUIRED = [
    {"service_name": "hubspot", "fields": ["access_token"], "help": ""},
    {"service_name": "slack", "fields": ["bot_token"], "help": ""},
]


def installed(api, template) -> dict:
    response = api.post(f"{TEMPLATES}/{template.id}/install", {}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["connector"]


def update(api, connector_id):
    return api.post(f"{CONNECTORS}/{connector_id}/update-from-template")


def test_a_staff_change_of_the_definition_raises_the_template_version(staff_api, make_template):
    template = make_template()

    edited = staff_api.patch(
        f"{TEMPLATES}/{template.id}", {"definition": definition(url="https://api.example.com/v2")}, format="json"
    )
    renamed = staff_api.patch(f"{TEMPLATES}/{template.id}", {"name": "Renamed"}, format="json")

    assert (edited.status_code, edited.json()["version"]) == (200, 2)
    assert renamed.json()["version"] == 2


def test_after_a_staff_edit_the_connector_takes_the_new_definition_as_a_new_version(
    alice_api, alice, acme, staff_api, make_template
):
    template = make_template(required_credentials=REQUIRED)
    connector = installed(alice_api, template)
    alice_api.patch(
        f"{CONNECTORS}/{connector['id']}", {"name": "Mine", "description": "kept", "is_active": False}, format="json"
    )
    new_definition = definition(url="https://api.example.com/v2", method="POST", timeout_seconds=7)
    staff_api.patch(f"{TEMPLATES}/{template.id}", {"definition": new_definition}, format="json")
    Credential.objects.create(
        workspace=acme, service_name="slack", field_names=["bot_token"], ciphertext="dummy", key_id="test"
    )
    assert alice_api.get(f"{CONNECTORS}/{connector['id']}").json()["template_update_available"] is True

    response = update(alice_api, connector["id"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["description"], body["is_active"]) == (
        connector["id"],
        "Mine",
        "kept",
        False,
    )
    assert body["steps"] == new_definition["steps"]
    assert (body["version"], body["template_version"], body["template_update_available"]) == (2, 2, False)
    assert body["missing_credentials"] == ["hubspot"]
    history = alice_api.get(f"{CONNECTORS}/{connector['id']}/versions").json()["results"]
    assert [(v["version"], v["created_by"]) for v in history] == [(2, alice.email), (1, alice.email)]
    assert history[1]["definition"]["steps"] == template.definition["steps"]


def test_an_up_to_date_connector_gets_409(alice_api, make_template):
    connector = installed(alice_api, make_template())

    response = update(alice_api, connector["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "up_to_date"
    assert "already up to date" in response.json()["detail"]


def test_a_connector_without_a_template_gets_409(alice_api, acme):
    connector = ConnectorFactory(workspace=acme)

    response = update(alice_api, connector.id)

    assert response.status_code == 409
    assert response.json()["code"] == "no_template"


def test_a_deleted_template_gets_409(alice_api, staff_api, make_template):
    template = make_template()
    connector = installed(alice_api, template)
    staff_api.delete(f"{TEMPLATES}/{template.id}")

    response = update(alice_api, connector["id"])

    assert response.status_code == 409
    assert "deleted" in response.json()["detail"]


def test_a_template_made_private_gets_409(alice_api, staff_api, make_template):
    template = make_template()
    connector = installed(alice_api, template)
    staff_api.patch(f"{TEMPLATES}/{template.id}", {"definition": definition(timeout_seconds=9)}, format="json")
    staff_api.patch(f"{TEMPLATES}/{template.id}", {"is_public": False}, format="json")

    response = update(alice_api, connector["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "template_unavailable"
    assert "no longer public" in response.json()["detail"]
    assert Connector.objects.get(pk=connector["id"]).version == 1


def test_a_template_whose_definition_no_longer_validates_gets_409(alice_api, make_template):
    template = make_template()
    connector = installed(alice_api, template)
    broken = {**template.definition, "steps": [{**template.definition["steps"][0], "name": "Bad Name"}]}
    ConnectorTemplate.objects.filter(pk=template.pk).update(definition=broken, version=2)

    response = update(alice_api, connector["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "template_invalid"
    assert ConnectorVersion.objects.filter(connector_id=connector["id"]).count() == 1


def test_a_template_version_raised_without_a_definition_change_still_updates(alice_api, staff_api, make_template):
    template = make_template()
    connector = installed(alice_api, template)
    staff_api.patch(f"{TEMPLATES}/{template.id}", {"required_credentials": REQUIRED}, format="json")

    body = update(alice_api, connector["id"]).json()

    assert (body["version"], body["template_version"]) == (2, 2)
    assert body["missing_credentials"] == ["hubspot", "slack"]
    assert body["steps"] == normalized_definition(template.definition)["steps"]


def test_another_workspace_cannot_update_the_connector(bob_api, alice_api, staff_api, make_template):
    template = make_template()
    connector = installed(alice_api, template)
    staff_api.patch(f"{TEMPLATES}/{template.id}", {"definition": definition(timeout_seconds=9)}, format="json")

    response = update(bob_api, connector["id"])

    assert response.status_code == 404
    assert Connector.objects.get(pk=connector["id"]).template_version == 1
