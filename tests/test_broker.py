"""config.broker: kombu's Redis transport with one Redis client per channel (settings for a redis:// broker), and
the lean publish of a task to run at once."""

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import pytest
import redis
from celery import Celery
from kombu import Connection

from config import broker
from config.broker import Transport, send_now

PROJECT = Path(__file__).resolve().parent.parent


def test_a_redis_broker_uses_the_transport():
    code = "from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT)"
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "DJANGO_DEBUG": "true"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    printed = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    assert printed == "config.broker:Transport"


def test_a_channel_reuses_its_client_and_messages_go_through(redis_url):
    with Connection(redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        assert channel._create_client() is channel._create_client()
        queue = connection.SimpleQueue("test-broker-transport")
        try:
            queue.put({"n": 1})
            queue.put({"n": 2})
            received = [queue.get(timeout=5), queue.get(timeout=5)]
            for message in received:
                message.ack()
        finally:
            queue.clear()
            queue.close()

    assert [message.payload for message in received] == [{"n": 1}, {"n": 2}]


def test_a_new_pool_gets_a_new_client(redis_url):
    with Connection(redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        first = channel._create_client()
        channel._pool = None  # what kombu does when it drops the channel's pool

        assert channel._create_client() is not first


def publishing_app(redis_url: str, queue: str) -> Celery:
    """A Celery app of its own on the test's Redis, publishing to `queue`, with the settings' transport."""
    app = Celery("broker-test", broker=redis_url, set_as_current=False)
    app.conf.update(broker_transport="config.broker:Transport", task_default_queue=queue)
    return app


def test_send_now_publishes_the_message_send_task_would(redis_url):
    app = publishing_app(redis_url, "test-send-now")
    queue = redis.Redis.from_url(redis_url)
    queue.delete("test-send-now")
    try:
        app.send_task("some.task", args=["id-1"], soft_time_limit=930, time_limit=960, ignore_result=True)
        send_now(app, "some.task", ["id-1"], soft_time_limit=930, time_limit=960)
        sent_by_celery, sent_now = (json.loads(raw) for raw in reversed(queue.lrange("test-send-now", 0, -1)))
    finally:
        queue.delete("test-send-now")
        broker._drop_publishing_channel(app)

    def comparable(envelope: dict) -> tuple:
        headers = {k: v for k, v in envelope["headers"].items() if k not in ("id", "root_id", "origin")}
        properties = {k: v for k, v in envelope["properties"].items() if k not in ("correlation_id", "reply_to")}
        properties.pop("delivery_tag")
        body = json.loads(base64.b64decode(envelope["body"]))
        return headers, properties, body, envelope["content-type"], envelope["content-encoding"]

    assert comparable(sent_now) == comparable(sent_by_celery)
    assert sent_now["headers"]["id"] == sent_now["headers"]["root_id"] == sent_now["properties"]["correlation_id"]


def test_send_now_keeps_one_channel_per_thread_and_drops_it_when_a_publish_fails(redis_url):
    app = publishing_app(redis_url, "test-send-now-channel")
    queue = redis.Redis.from_url(redis_url)
    queue.delete("test-send-now-channel")
    try:
        send_now(app, "some.task", ["id-1"], soft_time_limit=930, time_limit=960)
        kept = broker._publishing_channel(app)
        send_now(app, "some.task", ["id-2"], soft_time_limit=930, time_limit=960)
        assert broker._publishing_channel(app) is kept

        with (
            mock.patch.object(kept, "basic_publish", side_effect=redis.ConnectionError("gone")),
            pytest.raises(redis.ConnectionError),
        ):
            send_now(app, "some.task", ["id-3"], soft_time_limit=930, time_limit=960)
        send_now(app, "some.task", ["id-4"], soft_time_limit=930, time_limit=960)
        renewed = broker._publishing_channel(app)

        other_thread: list = []
        thread = threading.Thread(target=lambda: other_thread.append(broker._publishing_channel(app)))
        thread.start()
        thread.join()
        published = reversed(queue.lrange("test-send-now-channel", 0, -1))
        sent = [json.loads(raw)["headers"]["argsrepr"] for raw in published]
    finally:
        queue.delete("test-send-now-channel")
        broker._drop_publishing_channel(app)  # this thread keeps no connection of a test's app

    assert renewed is not kept
    assert other_thread[0] is not renewed
    assert sent == ["['id-1']", "['id-2']", "['id-4']"]


def test_send_now_follows_the_app_to_another_broker(redis_url):
    app = publishing_app(redis_url, "test-send-now-moved")
    other_url = redis_url.rsplit("/", 1)[0] + "/" + str((int(redis_url.rsplit("/", 1)[1]) + 1) % 16)
    first, second = redis.Redis.from_url(redis_url), redis.Redis.from_url(other_url)
    for queue in (first, second):
        queue.delete("test-send-now-moved")
    try:
        send_now(app, "some.task", ["id-1"], soft_time_limit=930, time_limit=960)
        app.pool.force_close_all()  # what tests and Celery (after a fork) do: a new pool, here for another broker
        app._pool = None
        app.conf.broker_url = other_url
        send_now(app, "some.task", ["id-2"], soft_time_limit=930, time_limit=960)
        on_first, on_second = (queue.llen("test-send-now-moved") for queue in (first, second))
    finally:
        for queue in (first, second):
            queue.delete("test-send-now-moved")
        broker._drop_publishing_channel(app)

    assert (on_first, on_second) == (1, 1)
