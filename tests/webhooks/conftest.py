import pytest

from executions.runtime import reset_runner
from tests.local_server import local_server  # noqa: F401 - fixture for the tests of this folder


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """Steps and deliveries may call 127.0.0.1 while a test runs (as CONNECTORS_ALLOWED_PRIVATE_HOSTS does)."""
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    yield
    reset_runner()
