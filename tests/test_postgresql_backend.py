"""core.postgresql: a connection is checked by a round trip only when its server sent something (as it does
when it goes away), persistent (the web) or pooled (the workers); a connection whose server ended it is
replaced before the next query, as Django's and the pool's own checks did."""

import copy
import time
import uuid
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool

from core.postgresql.base import DatabaseWrapper, has_unread_input

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend"),
]


def database_wrapper(**changes) -> DatabaseWrapper:
    settings_dict = copy.deepcopy(settings.DATABASES["default"]) | changes
    return DatabaseWrapper(settings_dict, alias=f"backend-test-{uuid.uuid4().hex[:8]}")


def backend_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int, ended) -> None:
    """Ends the backend from another session, and waits until its farewell reached the `ended` connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while not has_unread_input(ended) and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def persistent():
    wrapper = database_wrapper(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    yield wrapper
    wrapper.close()


@pytest.fixture
def pooled():
    options = {**settings.DATABASES["default"].get("OPTIONS", {}), "pool": {"min_size": 1, "max_size": 1}}
    wrapper = database_wrapper(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False, OPTIONS=options)
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def next_request(wrapper: DatabaseWrapper) -> None:
    """What Django does between two requests on a persistent connection."""
    wrapper.close_if_unusable_or_obsolete()


def test_an_idle_persistent_connection_is_reused_without_a_round_trip(persistent):
    pid = backend_pid(persistent)
    next_request(persistent)

    with mock.patch.object(persistent, "is_usable", wraps=persistent.is_usable) as checked:
        assert backend_pid(persistent) == pid
    assert checked.call_count == 0


def test_a_persistent_connection_whose_server_ended_it_is_replaced_before_the_next_query(persistent):
    pid = backend_pid(persistent)
    next_request(persistent)
    terminate(pid, persistent.connection)

    with mock.patch.object(persistent, "is_usable", wraps=persistent.is_usable) as checked:
        replacement = backend_pid(persistent)  # no error: the check found it dead and Django reconnected
    assert checked.call_count == 1
    assert replacement != pid


def test_a_pooled_connection_is_handed_out_without_a_round_trip(pooled):
    pid = backend_pid(pooled)
    pooled.close()  # back to the pool

    with mock.patch.object(ConnectionPool, "check_connection", wraps=ConnectionPool.check_connection) as checked:
        assert backend_pid(pooled) == pid
    assert checked.call_count == 0


def test_a_pooled_connection_whose_server_ended_it_is_replaced_before_the_next_query(pooled):
    pid = backend_pid(pooled)
    held = pooled.connection
    pooled.close()
    terminate(pid, held)

    with mock.patch.object(ConnectionPool, "check_connection", wraps=ConnectionPool.check_connection) as checked:
        replacement = backend_pid(pooled)
    assert checked.call_count == 1
    assert replacement != pid
