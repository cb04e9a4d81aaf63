"""workspaces.access: the user and memberships kept per process, and every change that must end them at once."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces import access
from workspaces.models import Membership, Role

CONNECTORS = "/api/v1/connectors"
API_KEYS = "/api/v1/workspace/api-keys"  # owners and admins only


@pytest.fixture(autouse=True)
def _empty_process_cache():
    access.forget_all()
    yield
    access.forget_all()


@pytest.fixture
def carol(acme):
    user = UserFactory(email="carol@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.ADMIN)
    return user


def queries_of(client, path: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        status = client.get(path).status_code
    return status, [q["sql"] for q in captured.captured_queries]


def test_a_known_member_costs_neither_the_user_nor_the_membership_query(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    status, queries = queries_of(client, CONNECTORS)

    assert status == 200
    assert not [sql for sql in queries if 'FROM "workspaces_user"' in sql or 'FROM "workspaces_membership"' in sql]


def test_the_only_workspace_is_cached_too(carol, acme):
    client = client_for(carol)  # no X-Workspace-ID: the caller's only workspace
    assert client.get(CONNECTORS).status_code == 200

    status, queries = queries_of(client, CONNECTORS)

    assert status == 200
    assert not [sql for sql in queries if 'FROM "workspaces_membership"' in sql]


def test_a_removed_member_is_refused_at_the_next_request(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    Membership.objects.get(user=carol, workspace=acme).delete()

    assert client.get(CONNECTORS).status_code == 403


def test_a_role_change_applies_at_the_next_request(carol, acme):
    client = client_for(carol, acme)
    assert client.get(API_KEYS).status_code == 200

    membership = Membership.objects.get(user=carol, workspace=acme)
    membership.role = Role.MEMBER
    membership.save()

    assert client.get(API_KEYS).status_code == 403


def test_a_new_membership_is_seen_at_once(carol, acme):
    client = client_for(carol)
    assert client.get(CONNECTORS).status_code == 200  # the only workspace, cached
    globex = WorkspaceFactory(name="Globex")
    MembershipFactory(user=carol, workspace=globex, role=Role.MEMBER)

    response = client.get(CONNECTORS)  # two workspaces now: the header is needed

    assert response.status_code == 400
    assert client_for(carol, globex).get(CONNECTORS).status_code == 200


def test_a_deactivated_user_is_refused_at_the_next_request(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    carol.is_active = False
    carol.save()

    response = client.get(CONNECTORS)
    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_a_deleted_user_is_refused_at_the_next_request(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    carol.delete()

    assert client.get(CONNECTORS).status_code == 401


def test_a_password_change_refuses_the_old_tokens(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    carol.set_password("A-completely-new-passphrase-9")
    carol.save()

    assert client.get(CONNECTORS).status_code == 401


def test_a_workspace_change_reaches_its_members(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200
    before = access.generation(carol.pk)

    acme.name = "Acme Renamed"
    acme.save()

    assert access.generation(carol.pk) != before
    assert access.generation(UserFactory(email="dave@else.test").pk) is not None  # a stranger: a value of its own


def test_a_deleted_workspace_refuses_its_former_members(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200

    acme.delete()

    assert client.get(CONNECTORS).status_code == 403


def test_entries_are_copies(carol, acme):
    load_count = []

    def load():
        load_count.append(1)
        return carol

    generation = access.generation(carol.pk)
    first = access.user(carol.pk, generation, load)
    first.full_name = "changed by one request"
    second = access.user(carol.pk, generation, load)

    assert load_count == [1]
    assert second.full_name != "changed by one request"


def test_a_lost_generation_never_matches_an_old_entry(carol, acme):
    client = client_for(carol, acme)
    assert client.get(CONNECTORS).status_code == 200
    Membership.objects.filter(user=carol).delete()  # a queryset delete: signals still fire per row
    cache.clear()  # and the cache forgot everything

    assert client.get(CONNECTORS).status_code == 403


def test_the_generation_lives_in_the_shared_cache(redis_url, carol):
    with override_settings(CACHES={"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": redis_url}}):
        cache.delete(f"access-generation:{carol.pk}")
        first = access.generation(carol.pk)
        assert cache.get(f"access-generation:{carol.pk}") == first

        access.changed(carol.pk)  # what another process does when it changes carol

        assert access.generation(carol.pk) != first
        cache.delete(f"access-generation:{carol.pk}")
