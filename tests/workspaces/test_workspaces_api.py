"""The workspaces list and create, and how the active workspace is chosen (docs/api.md §3)."""

import uuid

import pytest

from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Membership, Role

URL = "/api/v1/workspaces"
SCOPED = "/api/v1/connectors"


@pytest.fixture
def loner(db):
    """A user who belongs to no workspace."""
    return UserFactory(email="loner@example.com")


def test_list_shows_only_the_callers_workspaces_with_their_role(alice, acme, bob):
    initech = WorkspaceFactory(name="Initech")
    MembershipFactory(user=alice, workspace=initech, role=Role.MEMBER)

    response = client_for(alice).get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"id": str(acme.id), "name": "Acme", "role": "owner"},
            {"id": str(initech.id), "name": "Initech", "role": "member"},
        ],
    }


def test_list_for_a_user_without_workspaces_is_empty(loner):
    response = client_for(loner).get(URL)

    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


def test_list_needs_authentication(anon_api, db):
    assert anon_api.get(URL).status_code == 401


def test_create_returns_201_and_makes_the_caller_owner(alice):
    response = client_for(alice).post(URL, {"name": "Skunkworks"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "role"}
    assert body["name"] == "Skunkworks"
    assert body["role"] == "owner"
    membership = Membership.objects.get(workspace_id=body["id"])
    assert membership.user == alice
    assert membership.role == Role.OWNER


def test_user_without_workspace_can_create_one_and_then_use_it(loner):
    created = client_for(loner).post(URL, {"name": "Mine"}, format="json")

    assert created.status_code == 201
    assert client_for(loner).get(SCOPED).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": ["Acme"]}])
def test_create_with_a_bad_name_gets_400(alice, body):
    response = client_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert Membership.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize("slash", ["", "/"])
def test_workspaces_answer_with_and_without_trailing_slash(alice, slash):
    assert client_for(alice).get(URL + slash).status_code == 200
    assert client_for(alice).post(URL + slash, {"name": "Other"}, format="json").status_code == 201


# --- choosing the active workspace ---


def test_user_with_one_workspace_needs_no_header(alice):
    assert client_for(alice).get(SCOPED).status_code == 200


def test_user_with_no_workspace_gets_400_on_a_workspace_scoped_endpoint(loner):
    response = client_for(loner).get(SCOPED)

    assert response.status_code == 400
    assert response.json() == {"detail": "You do not belong to any workspace."}


def test_user_with_several_workspaces_and_no_header_gets_400(alice):
    MembershipFactory(user=alice, workspace=WorkspaceFactory(name="Initech"), role=Role.MEMBER)

    response = client_for(alice).get(SCOPED)

    assert response.status_code == 400
    assert "X-Workspace-ID" in response.json()["detail"]


def test_user_with_several_workspaces_chooses_one_with_the_header(alice, acme):
    MembershipFactory(user=alice, workspace=WorkspaceFactory(name="Initech"), role=Role.MEMBER)

    assert client_for(alice, acme).get(SCOPED).status_code == 200


def test_unknown_workspace_in_header_gets_403(alice):
    client = client_for(alice)
    client.defaults["HTTP_X_WORKSPACE_ID"] = str(uuid.uuid4())

    response = client.get(SCOPED)

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of this workspace."}


def test_foreign_workspace_in_header_gets_the_same_403_as_an_unknown_one(alice, globex):
    response = client_for(alice, globex).get(SCOPED)

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of this workspace."}


@pytest.mark.parametrize("header", ["not-a-uuid", "1234", "acme"])
def test_malformed_workspace_header_gets_400(alice, header):
    client = client_for(alice)
    client.defaults["HTTP_X_WORKSPACE_ID"] = header

    response = client.get(SCOPED)

    assert response.status_code == 400
    assert response.json() == {"detail": "X-Workspace-ID must be a workspace id (a UUID)."}


def test_staff_without_workspace_uses_the_workspaces_list_freely(staff_api):
    assert staff_api.get(URL).status_code == 200


def test_workspace_header_is_ignored_by_the_workspaces_list(alice, globex):
    response = client_for(alice, globex).get(URL)

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["results"]] == ["Acme"]
