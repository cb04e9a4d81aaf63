"""config.broker: kombu's Redis transport with one Redis client per channel (settings for a redis:// broker)."""

import os
import subprocess
import sys
from pathlib import Path

from kombu import Connection

from config.broker import Transport

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
