"""Workspace members (docs/api.md §3): owners and admins manage them; only owners grant owner; a workspace always
keeps an owner."""

import pytest

from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership, Role


def members_url(workspace) -> str:
    return f"/api/v1/workspaces/{workspace.id}/members"


def member_url(workspace, user) -> str:
    return f"{members_url(workspace)}/{user.id}"


@pytest.fixture
def carol(db):
    """Has an account but belongs to no workspace yet."""
    return UserFactory(email="carol@example.com")


@pytest.fixture
def admin(acme):
    user = UserFactory(email="adam@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.ADMIN)
    return user


@pytest.fixture
def member(acme):
    user = UserFactory(email="mallory@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.MEMBER)
    return user


def role_of(user, workspace) -> str | None:
    membership = Membership.objects.filter(user=user, workspace=workspace).first()
    return membership.role if membership else None


def test_list_shows_user_id_email_and_role(alice_api, alice, acme, member):
    response = alice_api.get(members_url(acme))

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"user_id": alice.id, "email": "alice@acme.test", "role": "owner"},
            {"user_id": member.id, "email": "mallory@acme.test", "role": "member"},
        ],
    }


def test_plain_member_can_list_members(alice, acme, member):
    response = client_for(member, acme).get(members_url(acme))

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_owner_adds_a_member_and_gets_201(alice_api, acme, carol):
    response = alice_api.post(members_url(acme), {"email": "carol@example.com", "role": "member"}, format="json")

    assert response.status_code == 201
    assert response.json() == {"user_id": carol.id, "email": "carol@example.com", "role": "member"}
    assert role_of(carol, acme) == Role.MEMBER


def test_role_defaults_to_member(alice_api, acme, carol):
    response = alice_api.post(members_url(acme), {"email": "carol@example.com"}, format="json")

    assert response.status_code == 201
    assert response.json()["role"] == "member"


def test_email_is_matched_case_insensitively(alice_api, acme, carol):
    response = alice_api.post(members_url(acme), {"email": "CAROL@example.com", "role": "admin"}, format="json")

    assert response.status_code == 201
    assert role_of(carol, acme) == Role.ADMIN


def test_re_adding_a_member_changes_their_role_and_gets_200(alice_api, acme, member):
    response = alice_api.post(members_url(acme), {"email": "mallory@acme.test", "role": "admin"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"user_id": member.id, "email": "mallory@acme.test", "role": "admin"}
    assert Membership.objects.filter(user=member, workspace=acme).count() == 1
    assert role_of(member, acme) == Role.ADMIN


def test_adding_an_email_without_account_gets_400(alice_api, acme):
    response = alice_api.post(members_url(acme), {"email": "ghost@example.com", "role": "member"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert Membership.objects.filter(workspace=acme).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "carol@example.com", "role": "superuser"}, "role"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "member"}, "email"),
    ],
)
def test_adding_with_bad_fields_gets_400(alice_api, acme, carol, body, field):
    response = alice_api.post(members_url(acme), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert role_of(carol, acme) is None


def test_member_cannot_add_members(acme, member, carol):
    response = client_for(member, acme).post(members_url(acme), {"email": "carol@example.com"}, format="json")

    assert response.status_code == 403
    assert role_of(carol, acme) is None


def test_admin_adds_a_member(acme, admin, carol):
    response = client_for(admin, acme).post(members_url(acme), {"email": "carol@example.com"}, format="json")

    assert response.status_code == 201
    assert role_of(carol, acme) == Role.MEMBER


def test_admin_cannot_grant_owner(acme, admin, carol):
    body = {"email": "carol@example.com", "role": "owner"}

    response = client_for(admin, acme).post(members_url(acme), body, format="json")

    assert response.status_code == 403
    assert role_of(carol, acme) is None


def test_admin_cannot_promote_an_existing_member_to_owner(acme, admin, member):
    response = client_for(admin, acme).patch(member_url(acme, member), {"role": "owner"}, format="json")

    assert response.status_code == 403
    assert role_of(member, acme) == Role.MEMBER


def test_owner_can_grant_owner(alice_api, acme, carol):
    response = alice_api.post(members_url(acme), {"email": "carol@example.com", "role": "owner"}, format="json")

    assert response.status_code == 201
    assert role_of(carol, acme) == Role.OWNER


def test_patch_changes_a_role(alice_api, acme, member):
    response = alice_api.patch(member_url(acme, member), {"role": "admin"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"user_id": member.id, "email": "mallory@acme.test", "role": "admin"}
    assert role_of(member, acme) == Role.ADMIN


def test_patch_with_an_unknown_role_gets_400(alice_api, acme, member):
    response = alice_api.patch(member_url(acme, member), {"role": "boss"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["role"]
    assert role_of(member, acme) == Role.MEMBER


def test_admin_changes_a_members_role(acme, admin, member):
    response = client_for(admin, acme).patch(member_url(acme, member), {"role": "admin"}, format="json")

    assert response.status_code == 200
    assert role_of(member, acme) == Role.ADMIN


def test_member_cannot_change_roles(acme, member, admin):
    response = client_for(member, acme).patch(member_url(acme, admin), {"role": "member"}, format="json")

    assert response.status_code == 403
    assert role_of(admin, acme) == Role.ADMIN


def test_admin_cannot_demote_an_owner(acme, admin, alice):
    response = client_for(admin, acme).patch(member_url(acme, alice), {"role": "member"}, format="json")

    assert response.status_code == 403
    assert role_of(alice, acme) == Role.OWNER


def test_delete_removes_a_member_and_returns_204(alice_api, acme, member):
    response = alice_api.delete(member_url(acme, member))

    assert response.status_code == 204
    assert role_of(member, acme) is None


def test_removed_member_loses_access_to_the_workspace(alice_api, acme, member):
    client = client_for(member, acme)

    alice_api.delete(member_url(acme, member))

    assert client.get("/api/v1/connectors").status_code == 403


def test_member_cannot_remove_members(acme, member, admin):
    response = client_for(member, acme).delete(member_url(acme, admin))

    assert response.status_code == 403
    assert role_of(admin, acme) == Role.ADMIN


def test_admin_cannot_remove_an_owner(acme, admin, alice):
    response = client_for(admin, acme).delete(member_url(acme, alice))

    assert response.status_code == 403
    assert role_of(alice, acme) == Role.OWNER


def test_last_owner_cannot_be_removed(alice_api, acme, alice):
    response = alice_api.delete(member_url(acme, alice))

    assert response.status_code == 400
    assert role_of(alice, acme) == Role.OWNER


def test_last_owner_cannot_be_demoted(alice_api, acme, alice):
    response = alice_api.patch(member_url(acme, alice), {"role": "admin"}, format="json")

    assert response.status_code == 400
    assert role_of(alice, acme) == Role.OWNER


def test_last_owner_cannot_be_demoted_by_re_adding_them(alice_api, acme, alice):
    response = alice_api.post(members_url(acme), {"email": "alice@acme.test", "role": "member"}, format="json")

    assert response.status_code == 400
    assert role_of(alice, acme) == Role.OWNER


def test_one_of_two_owners_can_be_demoted(alice_api, acme, carol):
    MembershipFactory(user=carol, workspace=acme, role=Role.OWNER)

    response = alice_api.patch(member_url(acme, carol), {"role": "member"}, format="json")

    assert response.status_code == 200
    assert role_of(carol, acme) == Role.MEMBER


def test_one_of_two_owners_can_be_removed(alice_api, acme, alice, carol):
    MembershipFactory(user=carol, workspace=acme, role=Role.OWNER)

    response = alice_api.delete(member_url(acme, alice))

    assert response.status_code == 204
    assert role_of(alice, acme) is None
    assert role_of(carol, acme) == Role.OWNER


def test_non_member_of_the_workspace_in_the_path_gets_403(bob_api, acme, alice):
    assert bob_api.get(members_url(acme)).status_code == 403
    assert (
        bob_api.post(members_url(acme), {"email": "bob@globex.test", "role": "owner"}, format="json").status_code == 403
    )
    assert bob_api.patch(member_url(acme, alice), {"role": "member"}, format="json").status_code == 403
    assert bob_api.delete(member_url(acme, alice)).status_code == 403
    assert role_of(alice, acme) == Role.OWNER


def test_path_workspace_wins_over_the_header(alice, acme, bob, globex):
    # alice names acme in the header but globex in the path: the path decides, and she is not in globex.
    response = client_for(alice, acme).get(members_url(globex))

    assert response.status_code == 403


def test_member_of_another_workspace_is_404_in_this_one(alice_api, acme, bob):
    response = alice_api.patch(member_url(acme, bob), {"role": "admin"}, format="json")

    assert response.status_code == 404
    assert alice_api.delete(member_url(acme, bob)).status_code == 404


def test_unknown_workspace_in_the_path_gets_403(alice_api):
    response = alice_api.get("/api/v1/workspaces/00000000-0000-0000-0000-000000000000/members")

    assert response.status_code == 403


@pytest.mark.parametrize("slash", ["", "/"])
def test_member_paths_answer_with_and_without_trailing_slash(alice_api, acme, member, slash):
    assert alice_api.get(members_url(acme) + slash).status_code == 200
    assert alice_api.patch(member_url(acme, member) + slash, {"role": "admin"}, format="json").status_code == 200
    assert alice_api.delete(member_url(acme, member) + slash).status_code == 204
