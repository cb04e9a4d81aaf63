"""Fixtures for the HTTP features of steps: loopback allowed for steps, and a fresh in-process rate limiter."""

import pytest

from executions.ratelimit import limiter_for
from executions.runtime import reset_runner
from tests.local_server import local_server  # noqa: F401 - fixture for the tests of this folder


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    limiter_for.cache_clear()
    yield
    reset_runner()
    limiter_for.cache_clear()
