import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.exceptions import InvalidInput
from workspaces.models import Role, User, Workspace
from workspaces.services import member_set


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
        try:
            change = member_set(workspace=workspace, user=user, role=role)
        except InvalidInput as error:
            raise CommandError(error.message) from None
        membership, created = change.membership, change.created
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} {user.email} as {membership.role} of {workspace.name} ({workspace.id}).")
