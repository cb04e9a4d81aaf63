import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workspaces.models import Membership, Role, User, Workspace


class Command(BaseCommand):
    help = "Add EMAIL to a workspace with a role (creating the user when --password is given)."

    def add_arguments(self, parser):
        parser.add_argument("workspace_id")
        parser.add_argument("email")
        parser.add_argument("--role", default=Role.MEMBER, help="owner, admin or member (default member)")
        parser.add_argument("--password", help="Create the user with this password if they have no account.")

    @transaction.atomic
    def handle(self, *args, workspace_id: str, email: str, role: str, password: str | None, **options):
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}; use one of: {', '.join(Role.values)}.")
        try:
            workspace = Workspace.objects.get(pk=uuid.UUID(workspace_id))
        except (ValueError, Workspace.DoesNotExist):
            raise CommandError(
                f"No workspace with id {workspace_id}. Create one with: manage.py create_workspace NAME --owner EMAIL"
            ) from None
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            if not password:
                raise CommandError(f"No user with email {email}. Pass --password to create them.")
            user = User.objects.create_user(email=email.strip(), password=password)
            self.stdout.write(f"Created user {user.email}.")
        existing = Membership.objects.select_for_update().filter(workspace=workspace, user=user).first()
        if existing is not None and existing.role == Role.OWNER and role != Role.OWNER:
            owners = Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER)
            if len(owners) <= 1:
                raise CommandError(
                    f"{user.email} is the last owner of {workspace.name}; make someone else owner first."
                )
        membership, created = Membership.objects.update_or_create(
            workspace=workspace, user=user, defaults={"role": role}
        )
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} {user.email} as {membership.role} of {workspace.name} ({workspace.id}).")
