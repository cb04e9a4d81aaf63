"""Staff edit memberships in the admin, but no workspace is left without an owner (the API's rule, docs/api.md §3)."""

from django.urls import reverse

from tests.factories import MembershipFactory
from workspaces.models import Membership, Role


def workspace_form(workspace, memberships, *, delete=(), roles=None) -> dict:
    """POST data of the workspace change page with its memberships inline."""
    roles = roles or {}
    data = {
        "name": workspace.name,
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        # The quota and usage inlines, left empty.
        "quota-TOTAL_FORMS": "0",
        "quota-INITIAL_FORMS": "0",
        "quota-MIN_NUM_FORMS": "0",
        "quota-MAX_NUM_FORMS": "1",
        "monthly_usage-TOTAL_FORMS": "0",
        "monthly_usage-INITIAL_FORMS": "0",
        "monthly_usage-MIN_NUM_FORMS": "0",
        "monthly_usage-MAX_NUM_FORMS": "0",
    }
    for index, membership in enumerate(memberships):
        prefix = f"memberships-{index}-"
        data |= {
            f"{prefix}id": str(membership.pk),
            f"{prefix}workspace": str(workspace.pk),
            f"{prefix}user": str(membership.user_id),
            f"{prefix}role": roles.get(membership.pk, membership.role),
        }
        if membership in delete:
            data[f"{prefix}DELETE"] = "on"
    return data


def test_demoting_the_last_owner_is_refused(staff_client, acme, alice):
    membership = Membership.objects.get(user=alice)

    response = staff_client.post(
        reverse("admin:workspaces_membership_change", args=[membership.pk]),
        {"user": str(alice.pk), "workspace": str(acme.pk), "role": Role.MEMBER},
    )

    membership.refresh_from_db()
    assert response.status_code == 200
    assert "Workspace Acme would be left without an owner" in response.content.decode()
    assert membership.role == Role.OWNER


def test_demoting_an_owner_when_another_remains_is_saved(staff_client, acme, alice):
    MembershipFactory(workspace=acme, role=Role.OWNER)
    membership = Membership.objects.get(user=alice)

    response = staff_client.post(
        reverse("admin:workspaces_membership_change", args=[membership.pk]),
        {"user": str(alice.pk), "workspace": str(acme.pk), "role": Role.MEMBER},
    )

    membership.refresh_from_db()
    assert response.status_code == 302
    assert membership.role == Role.MEMBER


def test_removing_the_last_owner_inline_is_refused(staff_client, acme, alice):
    member = MembershipFactory(workspace=acme, role=Role.MEMBER)
    owner = Membership.objects.get(user=alice)

    response = staff_client.post(
        reverse("admin:workspaces_workspace_change", args=[acme.pk]),
        workspace_form(acme, [owner, member], delete=[owner]),
    )

    assert response.status_code == 200
    assert "Workspace Acme would be left without an owner" in response.content.decode()
    assert Membership.objects.filter(workspace=acme).count() == 2


def test_handing_ownership_over_inline_is_saved(staff_client, acme, alice):
    member = MembershipFactory(workspace=acme, role=Role.MEMBER)
    owner = Membership.objects.get(user=alice)

    response = staff_client.post(
        reverse("admin:workspaces_workspace_change", args=[acme.pk]),
        workspace_form(acme, [owner, member], roles={owner.pk: Role.ADMIN, member.pk: Role.OWNER}),
    )

    assert response.status_code == 302
    assert dict(Membership.objects.filter(workspace=acme).values_list("pk", "role")) == {
        owner.pk: Role.ADMIN,
        member.pk: Role.OWNER,
    }


def test_deleting_the_last_owner_membership_is_protected(staff_client, acme, alice):
    membership = Membership.objects.get(user=alice)
    url = reverse("admin:workspaces_membership_delete", args=[membership.pk])

    page = staff_client.get(url)
    response = staff_client.post(url, {"post": "yes"})

    assert "Acme: its last owner" in page.content.decode()
    assert response.status_code == 200
    assert Membership.objects.filter(pk=membership.pk).exists()
