"""`Prefer: wait=N` with a real Celery worker: the worker publishes the end on Redis after its commit and the
waiting request, subscribed to it, answers at once."""

import pytest

from tests.conftest import client_for
from tests.executions.helpers import execute, json_reply, make_connector
from tests.executions.test_celery_worker import celery_worker  # noqa: F401 - fixture
from tests.local_server import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def test_wait_is_woken_by_the_worker_through_redis(celery_worker, alice, acme, local_server):  # noqa: F811
    local_server.route("/fast", json_reply({"ok": True}))
    local_server.route("/slow", Reply(200, delay=3))
    fast = make_connector(acme, [{"name": "call", "url": f"{local_server.url}/fast"}], name="fast")
    slow = make_connector(acme, [{"name": "call", "url": f"{local_server.url}/slow"}], name="slow")
    api = client_for(alice, acme)

    ended = execute(api, fast, HTTP_PREFER="wait=30")
    still_running = execute(api, slow, HTTP_PREFER="wait=1")

    assert (ended.status_code, ended["Preference-Applied"], ended.json()["status"]) == (200, "wait=30", "succeeded")
    assert (still_running.status_code, still_running["Preference-Applied"]) == (202, "wait=1")
    assert still_running.json()["status"] in ("queued", "running")
