"""The audit log: one entry per create, update and delete, from the API, the admin and commands."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from templates_market.models import ConnectorTemplate
from tests.factories import MembershipFactory, UserFactory, normalized_definition
from workspaces.models import Membership, Role

CONNECTOR = {"name": "Lookup", "steps": [{"name": "fetch", "url": "https://api.example.com/x"}]}
SECRET = "sk_live_audit-must-never-hold-this"


def entries(workspace):
    return list(
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("actor", "action", "target_type", "target_id", "ip")
    )


def test_connector_create_update_delete_through_the_api(alice_api, acme):
    created = alice_api.post("/api/v1/connectors", CONNECTOR, format="json").json()
    alice_api.patch(f"/api/v1/connectors/{created['id']}", {"name": "Renamed"}, format="json")
    alice_api.patch(f"/api/v1/connectors/{created['id']}", {"name": "Renamed"}, format="json")  # no change
    alice_api.delete(f"/api/v1/connectors/{created['id']}")

    assert entries(acme) == [
        ("alice@acme.test", "connector.created", "connector", created["id"], "127.0.0.1"),
        ("alice@acme.test", "connector.updated", "connector", created["id"], "127.0.0.1"),
        ("alice@acme.test", "connector.deleted", "connector", created["id"], "127.0.0.1"),
    ]
    assert AuditEntry.objects.get(action="connector.updated").details == {"fields": ["name"], "version": 1}


def test_credentials_are_audited_by_service_name_and_never_by_value(alice_api, acme):
    body = {"service_name": "stripe", "credentials": {"api_key": SECRET}}
    alice_api.post("/api/v1/workspace/credentials", body, format="json")
    alice_api.post("/api/v1/workspace/credentials", body, format="json")
    alice_api.delete("/api/v1/workspace/credentials/stripe")

    assert [row[1:4] for row in entries(acme)] == [
        ("credential.created", "credential", "stripe"),
        ("credential.updated", "credential", "stripe"),
        ("credential.deleted", "credential", "stripe"),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditentry WHERE details::text LIKE %s", [f"%{SECRET}%"])
        assert cursor.fetchone()[0] == 0
    listed = alice_api.get("/api/v1/workspace/audit-log").content.decode()
    assert SECRET not in listed
    assert AuditEntry.objects.filter(action="credential.created").get().details == {"fields": ["api_key"]}


def test_members_added_updated_and_removed(alice_api, acme):
    carol = UserFactory(email="carol@acme.test")
    url = f"/api/v1/workspaces/{acme.id}/members"
    alice_api.post(url, {"email": carol.email, "role": "member"}, format="json")
    alice_api.patch(f"{url}/{carol.id}", {"role": "admin"}, format="json")
    alice_api.delete(f"{url}/{carol.id}")

    assert [row[1:4] for row in entries(acme)] == [
        ("member.added", "member", str(carol.id)),
        ("member.updated", "member", str(carol.id)),
        ("member.removed", "member", str(carol.id)),
    ]


def test_a_template_install_records_the_install_and_the_new_connector(alice_api, acme):
    template = ConnectorTemplate.objects.create(
        name="Ping", slug="ping", definition=normalized_definition({"steps": [{"name": "ping", "url": "https://a.b/"}]})
    )

    connector = alice_api.post(f"/api/v1/connector-templates/{template.id}/install", {}, format="json").json()

    assert [row[1:4] for row in entries(acme)] == [
        ("connector.created", "connector", connector["connector"]["id"]),
        ("template.installed", "template", str(template.id)),
    ]


def test_the_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies(alice_api, acme, settings):
    alice_api.post("/api/v1/connectors", CONNECTOR, format="json", HTTP_X_FORWARDED_FOR="203.0.113.9")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    alice_api.post("/api/v1/connectors", CONNECTOR, format="json", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert [row[4] for row in entries(acme)] == ["127.0.0.1", "203.0.113.9"]


def test_an_api_key_is_the_actor_when_one_authenticated_the_call(acme, rf):
    from audit.context import _request
    from audit.services import record

    request = rf.post("/api/v1/connectors", REMOTE_ADDR="198.51.100.7")
    request.auth = type("Key", (), {"prefix": "cnk_abcdefgh"})()
    token = _request.set(request)
    try:
        record(workspace_id=acme.id, action="connector.created", target_type="connector", target_id="x")
    finally:
        _request.reset(token)

    assert entries(acme) == [("api_key:cnk_abcdefgh", "connector.created", "connector", "x", "198.51.100.7")]


def test_admin_changes_are_audited_with_the_staff_member(staff, acme, alice):
    from connectors.services import connector_create

    connector = connector_create(
        workspace=acme, data={"name": "Old", **normalized_definition({"steps": CONNECTOR["steps"]})}
    )
    client = Client()
    client.force_login(staff)
    change = reverse("admin:connectors_connector_change", args=[connector.pk])
    form = {"name": "Changed by staff", "description": "", "is_active": "on"}
    assert client.post(change, form).status_code == 302
    carol = UserFactory(email="carol@acme.test")
    add = reverse("admin:workspaces_membership_add")
    assert client.post(add, {"user": carol.pk, "workspace": acme.pk, "role": "member"}).status_code == 302
    membership = Membership.objects.get(user=carol)
    delete = reverse("admin:workspaces_membership_delete", args=[membership.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302

    assert [row[:3] for row in entries(acme)] == [
        ("system", "connector.created", "connector"),
        ("staff@saas.test", "connector.updated", "connector"),
        ("staff@saas.test", "member.added", "member"),
        ("staff@saas.test", "member.removed", "member"),
    ]


def test_commands_act_as_system(acme, alice):
    UserFactory(email="dave@acme.test")
    call_command("add_member", str(acme.id), "dave@acme.test", "--role", "admin")
    call_command("add_member", str(acme.id), "dave@acme.test", "--role", "member")

    assert [row[:2] for row in entries(acme)] == [("system", "member.added"), ("system", "member.updated")]
    assert {row[4] for row in entries(acme)} == {None}


def test_the_audit_log_lists_newest_first_for_owners_and_admins(alice_api, acme):
    for name in ("a", "b", "c"):
        alice_api.post("/api/v1/connectors", {**CONNECTOR, "name": name}, format="json")

    response = alice_api.get("/api/v1/workspace/audit-log")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    ids = [row["id"] for row in body["results"]]
    assert ids == sorted(ids, reverse=True)
    assert set(body["results"][0]) == {
        "id",
        "actor",
        "action",
        "target_type",
        "target_id",
        "details",
        "created_at",
        "ip",
    }


def test_the_audit_log_filters_by_action(alice_api, acme):
    created = alice_api.post("/api/v1/connectors", CONNECTOR, format="json").json()
    alice_api.delete(f"/api/v1/connectors/{created['id']}")

    response = alice_api.get("/api/v1/workspace/audit-log", {"action": "connector.deleted"})

    assert [row["action"] for row in response.json()["results"]] == ["connector.deleted"]
    assert alice_api.get("/api/v1/workspace/audit-log", {"action": "nope"}).status_code == 400


@pytest.mark.parametrize("role", [Role.MEMBER])
def test_members_cannot_read_the_audit_log(acme, role):
    from tests.conftest import client_for

    user = UserFactory(email="mel@acme.test")
    MembershipFactory(user=user, workspace=acme, role=role)

    assert client_for(user, acme).get("/api/v1/workspace/audit-log").status_code == 403


def test_another_workspaces_entries_are_not_listed(alice_api, bob_api):
    alice_api.post("/api/v1/connectors", CONNECTOR, format="json")

    assert bob_api.get("/api/v1/workspace/audit-log").json()["count"] == 0


def test_entries_cannot_be_changed(alice_api, acme):
    from django.db import DatabaseError, transaction

    alice_api.post("/api/v1/connectors", CONNECTOR, format="json")
    entry = AuditEntry.objects.get()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(actor="someone-else")


def test_the_admin_lists_entries_read_only_with_filters(staff_client, alice_api, acme):
    alice_api.post("/api/v1/connectors", CONNECTOR, format="json")
    url = reverse("admin:audit_auditentry_changelist")

    response = staff_client.get(url, {"action": "connector.created"})

    assert response.status_code == 200
    assert "alice@acme.test" in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (
        staff_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )
    assert AuditEntry.objects.count() == 1
