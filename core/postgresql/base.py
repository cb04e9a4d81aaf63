"""Django's PostgreSQL backend, with health checks that cost a poll instead of a round trip.

Django checks a reused connection before the first query of each request (CONN_HEALTH_CHECKS: `SELECT 1`)
and psycopg_pool checks a pooled one each time it hands it out (an empty query): a round trip each time, about
100-140 µs of this process's CPU plus the server's, once per API request and once per claim, checkpoint and
finish of a run. A connection whose server went away (a restart, a crash, a terminated backend) has something
to read: the server's farewell, or the end of the stream. So a connection with nothing to read is used as it
is, and only one with something to read is checked by a round trip, as before (a broken one is replaced). A
server cut off without closing (a network partition) is found by the first query, as it was by the check.
"""

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def has_unread_input(connection: Any) -> bool:
    """Whether the server sent something unasked (an idle, healthy connection has nothing to read), or the
    connection is known closed: then only a round trip can tell whether it still works."""
    if connection.closed or connection.broken:
        return True
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        """A persistent connection: Django's check (`SELECT 1`) only when the server sent something."""
        if self.pool is None and self.connection is not None and not has_unread_input(self.connection):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """A pooled connection, checked as above (the pool is built without its own check, see
        executions.worker_pool): one that fails its check goes back to the pool, which closes it and opens
        another, and the next one is taken."""
        connection = super().get_new_connection(conn_params)
        if self.pool is None:
            return connection
        for _ in range(self.pool.max_size):
            if not has_unread_input(connection):
                return connection
            try:
                ConnectionPool.check_connection(connection)
                return connection
            except self.Database.Error:
                self.pool.putconn(connection)
                connection = super().get_new_connection(conn_params)
        return connection
