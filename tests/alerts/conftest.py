from tests.executions.conftest import loopback_allowed  # noqa: F401 - steps may call the local servers
from tests.local_server import local_server  # noqa: F401
