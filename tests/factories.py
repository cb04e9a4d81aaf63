"""Small factories for the objects most tests need."""

from functools import cache

import factory
from django.contrib.auth.hashers import make_password

from connectors.models import Connector, ConnectorVersion
from contacts.models import Contact
from workspaces.models import Membership, Role, User, Workspace

PASSWORD = "Corr3ct-horse-battery"


@cache
def password_hash() -> str:
    """PASSWORD hashed once with the production hasher, so creating users stays cheap and logins still
    exercise the real password check."""
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.LazyFunction(password_hash)


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.OWNER


def simple_step(name: str = "fetch", url: str = "https://api.example.com/items", **overrides) -> dict:
    return {"name": name, "url": url, **overrides}


class ConnectorFactory(factory.django.DjangoModelFactory):
    """A connector stored in normalized form (as the API would store it)."""

    class Meta:
        model = Connector

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Connector {n}")
    steps = factory.LazyFunction(lambda: [normalized_step(simple_step())])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Records its current version too, as `connectors.services.connector_create` does."""
        connector = super()._create(model_class, *args, **kwargs)
        ConnectorVersion.objects.create(
            connector=connector,
            workspace_id=connector.workspace_id,
            version=connector.version,
            definition=connector.definition,
        )
        return connector


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")


def normalized_step(step: dict) -> dict:
    from connectors.validation import StepSerializer

    serializer = StepSerializer(data=step)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def normalized_definition(definition: dict) -> dict:
    from connectors.validation import DefinitionSerializer

    serializer = DefinitionSerializer(data=definition)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
