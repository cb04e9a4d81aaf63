from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workspaces.models import User
from workspaces.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace owned by EMAIL (creating that user when --password is given). Prints the id last."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, metavar="EMAIL")
        parser.add_argument("--password", help="Create the owner with this password if they have no account.")

    @transaction.atomic
    def handle(self, *args, name: str, owner: str, password: str | None, **options):
        name = name.strip()
        if not name:
            raise CommandError("The workspace name cannot be empty.")
        user = User.objects.filter(email__iexact=owner.strip()).first()
        if user is None:
            if not password:
                raise CommandError(
                    f"No user with email {owner}. Pass --password to create them, or register them first."
                )
            user = User.objects.create_user(email=owner.strip(), password=password)
            self.stderr.write(f"Created user {user.email}.")
        workspace = workspace_create(name=name, owner=user)
        self.stderr.write(f"Created workspace {workspace.name!r} owned by {user.email}.")
        self.stdout.write(str(workspace.id))
