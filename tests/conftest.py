"""Shared fixtures: two workspaces (alice's Acme and bob's Globex) and API clients acting as their owners.

The suite runs on PostgreSQL (DATABASE_URL, see README). A socket guard (tests/net_guard.py) fails any test
that tries to connect outside 127.0.0.0/8 and ::1.
"""

import os

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Role

pytest_plugins = ["tests.net_guard", "tests.local_server"]


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("CI") and "postgresql" not in engine:
        raise pytest.UsageError("CI must run the suite on PostgreSQL: set DATABASE_URL (see README).")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    """A test inside a transaction (the `db` fixture) never commits, so the quota's deferred trigger
    (usage/0003), which counts a single execution's start at COMMIT, would never run in it: there it runs at
    the INSERT instead, as Django's TestCase checks deferred constraints before a test ends. Tests with
    `transactional_db` commit and meet it at COMMIT (tests/usage/test_quota_at_commit.py)."""
    from django.db import connection

    from usage.services import count_starts_at_insert

    if connection.in_atomic_block:
        count_starts_at_insert()


REDIS_URL = os.environ.get("CONNECTORS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    """The test Redis (CONNECTORS_TEST_REDIS_URL): a test that needs it fails in CI when it does not answer,
    and is skipped elsewhere."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable ({error})", pytrace=False)
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({error})")
    return REDIS_URL


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle and lockout counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def client_for(user=None, workspace=None) -> APIClient:
    """An API client authenticated as `user` (a fresh JWT), with `workspace` as the active workspace."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    if workspace is not None:
        client.defaults["HTTP_X_WORKSPACE_ID"] = str(workspace.id)
    return client


@pytest.fixture
def acme(db):
    return WorkspaceFactory(name="Acme")


@pytest.fixture
def globex(db):
    return WorkspaceFactory(name="Globex")


@pytest.fixture
def alice(acme):
    user = UserFactory(email="alice@acme.test")
    MembershipFactory(user=user, workspace=acme, role=Role.OWNER)
    return user


@pytest.fixture
def bob(globex):
    user = UserFactory(email="bob@globex.test")
    MembershipFactory(user=user, workspace=globex, role=Role.OWNER)
    return user


@pytest.fixture
def alice_api(alice, acme) -> APIClient:
    return client_for(alice, acme)


@pytest.fixture
def bob_api(bob, globex) -> APIClient:
    return client_for(bob, globex)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def staff(db):
    return UserFactory(email="staff@saas.test", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return client_for(staff)
