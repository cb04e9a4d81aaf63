"""`create_workspace` and `add_member` (docs/operations.md)."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from tests.factories import PASSWORD, UserFactory
from workspaces.models import Membership, Role, User, Workspace


def run(*args) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


# --- create_workspace ---


def test_create_workspace_prints_the_workspace_id_as_its_last_stdout_line(db):
    stdout, _ = run("create_workspace", "Acme", "--owner", "ops@acme.test", "--password", PASSWORD)

    workspace_id = last_line(stdout)
    assert str(uuid.UUID(workspace_id)) == workspace_id
    assert Workspace.objects.get(pk=workspace_id).name == "Acme"


def test_create_workspace_creates_the_owner_with_the_password(db):
    stdout, _ = run("create_workspace", "Acme", "--owner", "ops@acme.test", "--password", PASSWORD)

    user = User.objects.get(email="ops@acme.test")
    assert user.check_password(PASSWORD)
    membership = Membership.objects.get(user=user)
    assert str(membership.workspace_id) == last_line(stdout)
    assert membership.role == Role.OWNER


def test_create_workspace_for_an_existing_user_needs_no_password(db):
    user = UserFactory(email="ops@acme.test")

    stdout, _ = run("create_workspace", "Acme", "--owner", "OPS@acme.test")

    membership = Membership.objects.get(user=user)
    assert str(membership.workspace_id) == last_line(stdout)
    assert membership.role == Role.OWNER
    assert User.objects.count() == 1


def test_create_workspace_keeps_an_existing_users_password(db):
    user = UserFactory(email="ops@acme.test")

    run("create_workspace", "Acme", "--owner", "ops@acme.test", "--password", "something-else-entirely")

    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_create_workspace_for_a_missing_owner_without_password_fails_with_a_hint(db):
    with pytest.raises(CommandError, match="--password"):
        run("create_workspace", "Acme", "--owner", "ghost@acme.test")

    assert not Workspace.objects.exists()
    assert not User.objects.exists()


def test_create_workspace_with_a_blank_name_fails(db):
    with pytest.raises(CommandError, match="name"):
        run("create_workspace", "  ", "--owner", "ops@acme.test", "--password", PASSWORD)

    assert not Workspace.objects.exists()


def test_create_workspace_requires_an_owner(db):
    with pytest.raises(CommandError, match="--owner"):
        run("create_workspace", "Acme")


# --- add_member ---


def test_add_member_adds_an_existing_user_with_the_role(acme, alice):
    carol = UserFactory(email="carol@example.com")

    stdout, _ = run("add_member", str(acme.id), "carol@example.com", "--role", "admin")

    assert Membership.objects.get(user=carol, workspace=acme).role == Role.ADMIN
    assert "carol@example.com" in stdout


def test_add_member_defaults_to_the_member_role(acme, alice):
    carol = UserFactory(email="carol@example.com")

    run("add_member", str(acme.id), "carol@example.com")

    assert Membership.objects.get(user=carol, workspace=acme).role == Role.MEMBER


def test_add_member_creates_the_user_when_given_a_password(acme, alice):
    run("add_member", str(acme.id), "carol@example.com", "--password", PASSWORD)

    carol = User.objects.get(email="carol@example.com")
    assert carol.check_password(PASSWORD)
    assert Membership.objects.get(user=carol, workspace=acme).role == Role.MEMBER


def test_add_member_for_an_unknown_user_without_password_fails_with_a_hint(acme, alice):
    with pytest.raises(CommandError, match="--password"):
        run("add_member", str(acme.id), "ghost@example.com")

    assert not User.objects.filter(email="ghost@example.com").exists()


def test_add_member_changes_the_role_of_an_existing_member(acme, alice):
    carol = UserFactory(email="carol@example.com")
    run("add_member", str(acme.id), "carol@example.com", "--role", "member")

    stdout, _ = run("add_member", str(acme.id), "carol@example.com", "--role", "owner")

    assert Membership.objects.get(user=carol, workspace=acme).role == Role.OWNER
    assert Membership.objects.filter(user=carol, workspace=acme).count() == 1
    assert "Updated" in stdout


def test_add_member_with_an_unknown_role_fails_naming_the_roles(acme, alice):
    UserFactory(email="carol@example.com")

    with pytest.raises(CommandError, match="owner, admin, member"):
        run("add_member", str(acme.id), "carol@example.com", "--role", "superuser")

    assert Membership.objects.filter(workspace=acme).count() == 1


def test_add_member_to_an_unknown_workspace_fails(db):
    UserFactory(email="carol@example.com")

    with pytest.raises(CommandError, match="No workspace with id"):
        run("add_member", str(uuid.uuid4()), "carol@example.com")


def test_add_member_with_a_malformed_workspace_id_fails(db):
    UserFactory(email="carol@example.com")

    with pytest.raises(CommandError, match="No workspace with id not-a-uuid"):
        run("add_member", "not-a-uuid", "carol@example.com")


def test_add_member_does_not_demote_the_last_owner(acme, alice):
    with pytest.raises(CommandError, match="last owner"):
        run("add_member", str(acme.id), "alice@acme.test", "--role", "member")

    assert Membership.objects.get(user=alice, workspace=acme).role == Role.OWNER


def test_add_member_demotes_an_owner_when_another_owner_remains(acme, alice):
    carol = UserFactory(email="carol@example.com")
    run("add_member", str(acme.id), "carol@example.com", "--role", "owner")

    run("add_member", str(acme.id), "alice@acme.test", "--role", "admin")

    assert Membership.objects.get(user=alice, workspace=acme).role == Role.ADMIN
    assert Membership.objects.get(user=carol, workspace=acme).role == Role.OWNER
