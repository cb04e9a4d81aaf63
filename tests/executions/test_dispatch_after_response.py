"""In a web request, an execution's broker message is sent once the response has been written
(executions.dispatch): through Django's WSGI handler, as gunicorn drives it, against the test Redis as broker."""

import base64
import io
import json
import uuid

import pytest
import redis
from django.core.handlers.wsgi import WSGIHandler
from rest_framework_simplejwt.tokens import RefreshToken

from config.celery import app as celery_app
from executions import dispatch
from executions.models import Execution
from tests.executions.helpers import make_connector

pytestmark = pytest.mark.django_db(transaction=True)  # the request's COMMIT must really happen


@pytest.fixture
def queue(redis_url, settings):
    """The broker is the test Redis, with a queue of this test's own; yields a function listing the execution
    ids of the `run_execution` messages in it."""
    name = f"test-dispatch-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.broker_url, celery_app.conf.CELERY_TASK_DEFAULT_QUEUE
    settings.CELERY_BROKER_URL = redis_url
    _point_celery_at(redis_url, name)
    client = redis.Redis.from_url(redis_url)

    def execution_ids() -> list[str]:
        messages = [json.loads(raw) for raw in reversed(client.lrange(name, 0, -1))]
        assert {message["headers"]["task"] for message in messages} <= {dispatch.RUN_EXECUTION_TASK}
        return [json.loads(base64.b64decode(message["body"]))[0][0] for message in messages]  # kombu's encoding

    yield execution_ids
    dispatch.send_when_answered()  # a test that failed before closing its response leaves no request open
    client.delete(name)
    _point_celery_at(*previous)


def _point_celery_at(url, queue) -> None:
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
    celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = queue  # the settings' name: the app reads them by namespace


@pytest.fixture
def connector(acme):
    return make_connector(acme, [{"name": "call", "url": "http://127.0.0.1:9/never-called"}])


def request(method: str, path: str, user=None, workspace=None, body: dict | None = None, **headers: str):
    """One request through the WSGI handler; returns (status, body, the response iterable not yet closed)."""
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": "application/json",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    if user is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {RefreshToken.for_user(user).access_token}"
        environ["HTTP_X_WORKSPACE_ID"] = str(workspace.id)
    statuses = []
    response = WSGIHandler()(environ, lambda status, response_headers: statuses.append(status))
    return int(statuses[0].split()[0]), b"".join(response), response


def test_the_execute_call_sends_its_message_once_its_response_is_written(queue, alice, acme, connector):
    status, body, response = request("POST", f"/api/v1/connectors/{connector.id}/execute", alice, acme, {"input": {}})
    execution_id = json.loads(body)["id"]

    assert status == 202
    assert Execution.objects.get(pk=execution_id).status == "queued"  # committed before the answer
    assert queue() == []  # answered; the message waits for the server to close the response

    response.close()  # what the WSGI server does once the response is written

    assert queue() == [execution_id]


def test_a_call_that_waits_for_its_execution_sends_the_message_before_waiting(queue, alice, acme, connector):
    path = f"/api/v1/connectors/{connector.id}/execute"
    status, body, response = request("POST", path, alice, acme, {"input": {}}, PREFER="wait=1")  # no worker runs

    assert (status, json.loads(body)["status"]) == (202, "queued")
    assert queue() == [json.loads(body)["id"]]  # sent before its one-second wait, not after the response
    response.close()
    assert len(queue()) == 1


def test_messages_of_a_response_never_closed_go_with_the_next_request(
    queue, alice, acme, connector, caplog, monkeypatch
):
    monkeypatch.setattr(dispatch, "_unclosed_reported", False)
    _, body, _never_closed = request("POST", f"/api/v1/connectors/{connector.id}/execute", alice, acme, {"input": {}})

    status, _, response = request("GET", "/api/v1/no-such-path")

    assert status == 404
    assert queue() == [json.loads(body)["id"]]
    response.close()
    [warning] = [record for record in caplog.records if record.name == "executions.dispatch"]
    assert "never closed" in warning.getMessage()


def test_outside_a_request_the_message_is_sent_at_once(queue, connector):
    execution_id = uuid.uuid4()

    dispatch.enqueue(execution_id)

    assert queue() == [str(execution_id)]


def test_after_a_request_later_messages_are_sent_at_once(queue, alice, acme, connector):
    _, body, response = request("POST", f"/api/v1/connectors/{connector.id}/execute", alice, acme, {"input": {}})
    response.close()
    later = uuid.uuid4()

    dispatch.enqueue(later)  # the same thread, as a management command or a task would

    assert queue() == [json.loads(body)["id"], str(later)]
