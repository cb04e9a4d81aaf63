"""Workspace isolation (docs/api.md §3): another workspace's objects are 404, never 403, and never leak."""

import pytest

from connectors.models import Connector
from contacts.models import Contact
from tests.conftest import client_for
from tests.factories import ConnectorFactory, ContactFactory, MembershipFactory, UserFactory
from workspaces.models import Role
from workspaces.scoping import WorkspaceScopedViewSet

CONNECTOR_BODY = {"name": "Stolen", "steps": [{"name": "grab", "url": "https://evil.example/x"}]}
CONTACT_BODY = {"email": "stolen@example.com", "first_name": "Stolen"}


@pytest.fixture
def alice_connector(acme):
    return ConnectorFactory(workspace=acme, name="Phone validation")


@pytest.fixture
def alice_contact(acme):
    return ContactFactory(workspace=acme, email="vip@acme.test", first_name="Vera")


def connector_snapshot(connector):
    connector.refresh_from_db()
    return (connector.workspace_id, connector.name, connector.steps, connector.version, connector.updated_at)


def contact_snapshot(contact):
    contact.refresh_from_db()
    return (contact.workspace_id, contact.email, contact.first_name, contact.updated_at)


# --- connectors ---


def test_other_workspace_gets_404_for_a_connector(bob_api, alice_connector):
    response = bob_api.get(f"/api/v1/connectors/{alice_connector.id}")

    assert response.status_code == 404
    assert "Phone validation" not in response.content.decode()


def test_other_workspace_cannot_put_a_connector(bob_api, alice_connector):
    before = connector_snapshot(alice_connector)

    response = bob_api.put(f"/api/v1/connectors/{alice_connector.id}", CONNECTOR_BODY, format="json")

    assert response.status_code == 404
    assert connector_snapshot(alice_connector) == before


def test_other_workspace_cannot_patch_a_connector(bob_api, alice_connector):
    before = connector_snapshot(alice_connector)

    response = bob_api.patch(f"/api/v1/connectors/{alice_connector.id}", {"name": "Stolen"}, format="json")

    assert response.status_code == 404
    assert connector_snapshot(alice_connector) == before


def test_other_workspace_cannot_delete_a_connector(bob_api, alice_connector):
    response = bob_api.delete(f"/api/v1/connectors/{alice_connector.id}")

    assert response.status_code == 404
    assert Connector.objects.filter(pk=alice_connector.pk).exists()


def test_other_workspace_cannot_execute_a_connector(bob_api, alice_connector):
    response = bob_api.post(f"/api/v1/connectors/{alice_connector.id}/execute", {"input": {}}, format="json")

    assert response.status_code == 404
    assert alice_connector.executions.count() == 0


def test_connector_list_never_shows_another_workspaces_rows(alice_api, bob_api, acme, globex):
    ConnectorFactory(workspace=acme, name="Alice's")
    ConnectorFactory(workspace=globex, name="Bob's")

    alice_names = [item["name"] for item in alice_api.get("/api/v1/connectors").json()["results"]]
    bob_names = [item["name"] for item in bob_api.get("/api/v1/connectors").json()["results"]]

    assert alice_names == ["Alice's"]
    assert bob_names == ["Bob's"]


def test_connector_search_never_reaches_another_workspace(bob_api, alice_connector):
    response = bob_api.get("/api/v1/connectors", {"search": "Phone"})

    assert response.json()["count"] == 0


def test_connector_created_by_bob_lands_in_his_workspace(bob_api, globex):
    response = bob_api.post("/api/v1/connectors", CONNECTOR_BODY, format="json")

    assert response.status_code == 201
    assert Connector.objects.get(pk=response.json()["id"]).workspace == globex


# --- contacts ---


def test_other_workspace_gets_404_for_a_contact(bob_api, alice_contact):
    response = bob_api.get(f"/api/v1/contacts/{alice_contact.id}")

    assert response.status_code == 404
    assert "vip@acme.test" not in response.content.decode()


def test_other_workspace_cannot_put_a_contact(bob_api, alice_contact):
    before = contact_snapshot(alice_contact)

    response = bob_api.put(f"/api/v1/contacts/{alice_contact.id}", CONTACT_BODY, format="json")

    assert response.status_code == 404
    assert contact_snapshot(alice_contact) == before


def test_other_workspace_cannot_patch_a_contact(bob_api, alice_contact):
    before = contact_snapshot(alice_contact)

    response = bob_api.patch(f"/api/v1/contacts/{alice_contact.id}", {"first_name": "Stolen"}, format="json")

    assert response.status_code == 404
    assert contact_snapshot(alice_contact) == before


def test_other_workspace_cannot_delete_a_contact(bob_api, alice_contact):
    response = bob_api.delete(f"/api/v1/contacts/{alice_contact.id}")

    assert response.status_code == 404
    assert Contact.objects.filter(pk=alice_contact.pk).exists()


def test_contact_list_never_shows_another_workspaces_rows(alice_api, bob_api, acme, globex):
    ContactFactory(workspace=acme, email="a@acme.test")
    ContactFactory(workspace=globex, email="b@globex.test")

    alice_emails = [item["email"] for item in alice_api.get("/api/v1/contacts").json()["results"]]
    bob_emails = [item["email"] for item in bob_api.get("/api/v1/contacts").json()["results"]]

    assert alice_emails == ["a@acme.test"]
    assert bob_emails == ["b@globex.test"]


def test_executing_with_another_workspaces_contact_is_refused(alice_api, acme, globex):
    connector = ConnectorFactory(workspace=acme)
    foreign = ContactFactory(workspace=globex)

    response = alice_api.post(
        f"/api/v1/connectors/{connector.id}/execute", {"input": {}, "contact_id": str(foreign.id)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"contact_id": ["No such contact in this workspace."]}
    assert connector.executions.count() == 0


# --- naming a workspace one does not belong to ---


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/connectors"),
        ("post", "/api/v1/connectors"),
        ("get", "/api/v1/contacts"),
        ("post", "/api/v1/contacts"),
    ],
)
def test_bob_naming_acme_in_the_header_gets_403(bob, acme, alice_connector, method, path):
    client = client_for(bob, acme)

    response = getattr(client, method)(path, {}, format="json")

    assert response.status_code == 403
    assert Connector.objects.filter(workspace=acme).count() == 1


def test_bob_naming_acme_in_the_header_gets_403_for_alices_connector(bob, acme, alice_connector):
    response = client_for(bob, acme).get(f"/api/v1/connectors/{alice_connector.id}")

    assert response.status_code == 403


def test_a_member_of_both_workspaces_sees_each_through_the_header(alice, acme, globex):
    MembershipFactory(user=alice, workspace=globex, role=Role.MEMBER)
    ConnectorFactory(workspace=acme, name="In Acme")
    ConnectorFactory(workspace=globex, name="In Globex")

    in_acme = client_for(alice, acme).get("/api/v1/connectors").json()["results"]
    in_globex = client_for(alice, globex).get("/api/v1/connectors").json()["results"]

    assert [item["name"] for item in in_acme] == ["In Acme"]
    assert [item["name"] for item in in_globex] == ["In Globex"]


def test_object_of_one_of_my_workspaces_is_404_under_the_other(alice, acme, globex):
    MembershipFactory(user=alice, workspace=globex, role=Role.MEMBER)
    connector = ConnectorFactory(workspace=acme)

    assert client_for(alice, globex).get(f"/api/v1/connectors/{connector.id}").status_code == 404


def test_plain_member_reads_and_writes_connectors(acme):
    member = UserFactory(email="mallory@acme.test")
    MembershipFactory(user=member, workspace=acme, role=Role.MEMBER)
    client = client_for(member, acme)

    created = client.post("/api/v1/connectors", CONNECTOR_BODY, format="json")

    assert created.status_code == 201
    assert client.get(f"/api/v1/connectors/{created.json()['id']}").status_code == 200


# --- the base class ---


def test_scoped_viewset_may_not_override_get_queryset():
    with pytest.raises(TypeError, match="get_unscoped_queryset"):

        class Leaky(WorkspaceScopedViewSet):
            def get_queryset(self):
                return Connector.objects.all()
