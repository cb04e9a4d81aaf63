"""Writes for users, workspaces and memberships, with the role rules of docs/api.md §3."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from audit import services as audit
from core.exceptions import DomainError, InvalidInput
from workspaces.models import Membership, Role, User, Workspace
from workspaces.tokens import revoke_access_tokens


class PermissionDeniedError(DomainError):
    status_code = 403
    code = "permission_denied"


@dataclass(frozen=True)
class MembershipChange:
    membership: Membership
    created: bool


@transaction.atomic
def workspace_create(*, name: str, owner: User) -> Workspace:
    workspace = Workspace.objects.create(name=name)
    Membership.objects.create(user=owner, workspace=workspace, role=Role.OWNER)
    return workspace


class EmailTaken(InvalidInput):
    """The email already has an account. The API does not tell the caller so (docs/security.md)."""

    def __init__(self) -> None:
        super().__init__("This email cannot be registered.", field="email")


def default_workspace_name(email: str) -> str:
    return f"{email.split('@')[0]}'s workspace"


@transaction.atomic
def user_register(*, email: str, password: str, workspace_name: str | None = None) -> tuple[User, Workspace]:
    """Creates the user and a workspace they own. Raises InvalidInput for a weak password (checked first, so
    it is reported whether or not the email is taken) and EmailTaken for a taken email."""
    email = User.objects.normalize_email(email).lower()
    try:
        validate_password(password, user=User(email=email))
    except DjangoValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from None
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
    except IntegrityError:
        raise EmailTaken() from None
    workspace = workspace_create(name=workspace_name or default_workspace_name(email), owner=user)
    return user, workspace


def registration_decoy(*, email: str, password: str, workspace_name: str | None = None) -> dict[str, Any]:
    """The answer to registering a taken email: shaped and timed like a real registration, so that register
    does not tell who has an account (docs/security.md). Nothing is created or changed; the account's owner
    logs in with their own password as before."""
    make_password(password)  # a real registration spends this hashing; the decoy must take as long
    email = User.objects.normalize_email(email).lower()
    likely_next_id = (User.objects.aggregate(last=Max("id"))["last"] or 0) + 1
    return {
        "id": likely_next_id,
        "email": email,
        "workspace": {"id": uuid.uuid4(), "name": workspace_name or default_workspace_name(email)},
    }


def _require_manager(actor: Membership) -> None:
    if not actor.can_manage:
        raise PermissionDeniedError("Only an owner or an admin can manage members.")


def _lock_owners(workspace: Workspace) -> list[Membership]:
    return list(Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER))


@transaction.atomic
def member_add(*, actor: Membership, email: str, role: str) -> MembershipChange:
    """Adds the user with this email, or changes their role if they are already a member."""
    _require_manager(actor)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDeniedError("Only an owner can grant the owner role.")
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise InvalidInput("No account exists with this email; ask them to register first.", field="email")
    existing = Membership.objects.select_for_update().filter(workspace=actor.workspace, user=user).first()
    if existing is not None:
        return MembershipChange(member_change_role(actor=actor, membership=existing, role=role), created=False)
    membership = Membership.objects.create(workspace=actor.workspace, user=user, role=role)
    _audit_member(membership, "member.added")
    return MembershipChange(membership, created=True)


@transaction.atomic
def member_change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    _require_manager(actor)
    if Role.OWNER in (role, membership.role) and actor.role != Role.OWNER:
        raise PermissionDeniedError("Only an owner can grant or take away the owner role.")
    if membership.role == Role.OWNER and role != Role.OWNER:
        owners = _lock_owners(membership.workspace)
        if len(owners) <= 1:
            raise InvalidInput("The last owner cannot be demoted; make someone else owner first.", field="role")
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
        _audit_member(membership, "member.updated")
    return membership


@transaction.atomic
def member_remove(*, actor: Membership, membership: Membership) -> None:
    _require_manager(actor)
    if membership.role == Role.OWNER:
        if actor.role != Role.OWNER:
            raise PermissionDeniedError("Only an owner can remove an owner.")
        if len(_lock_owners(membership.workspace)) <= 1:
            raise InvalidInput("The last owner cannot be removed; make someone else owner first.")
    _audit_member(membership, "member.removed")
    membership.delete()


def _audit_member(membership: Membership, action: str) -> None:
    """Members are named by their user id (the id the members API uses), with the role as it is now."""
    audit.record(
        workspace_id=membership.workspace_id,
        action=action,
        target_type="member",
        target_id=membership.user_id,
        details={"role": membership.role},
    )


@transaction.atomic
def member_set(*, workspace: Workspace, user: User, role: str, keep_an_owner: bool = True) -> MembershipChange:
    """Makes `user` a member of `workspace` with `role`, for staff (the admin) and operators (add_member):
    no actor's role rules, but the last owner is not demoted (InvalidInput) unless `keep_an_owner` is False
    (the admin's forms check a whole set of membership changes at once, before saving them one by one)."""
    existing = Membership.objects.select_for_update().filter(workspace=workspace, user=user).first()
    if existing is None:
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        _audit_member(membership, "member.added")
        return MembershipChange(membership, created=True)
    demoting = existing.role == Role.OWNER and role != Role.OWNER
    if keep_an_owner and demoting and len(_lock_owners(workspace)) <= 1:
        raise InvalidInput(f"{user.email} is the last owner of {workspace.name}; make someone else owner first.")
    if existing.role != role:
        existing.role = role
        existing.save(update_fields=["role"])
        _audit_member(existing, "member.updated")
    return MembershipChange(existing, created=False)


@transaction.atomic
def member_delete(*, membership: Membership) -> None:
    """Removes a membership for staff (the admin checks the last-owner rule in its forms)."""
    _audit_member(membership, "member.removed")
    membership.delete()


@transaction.atomic
def password_change(*, user: User, old_password: str, new_password: str) -> None:
    """Sets a new password and revokes every token issued before it.

    Access tokens carry a hash of the password hash (simplejwt's revoke claim) and the token version, so they
    stop working at once; outstanding refresh tokens are blacklisted.
    """
    if not user.check_password(old_password):
        raise InvalidInput("The current password is not correct.", field="old_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    revoke_access_tokens(user=user)
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
