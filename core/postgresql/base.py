"""Django's PostgreSQL backend, with health checks that cost a look at the socket instead of a round trip.

Django checks a reused connection before the first query of each request (CONN_HEALTH_CHECKS: `SELECT 1`)
and psycopg_pool checks a pooled one each time it hands it out (an empty query): a round trip each time, about
100-140 µs of this process's CPU plus the server's, once per API request and once per claim, checkpoint and
finish of a run. A server that went away (a restart, a crash, a terminated backend) closed the stream, and
the connection's TCP state says so at once (it leaves ESTABLISHED when the server's FIN or RST arrives). So
a connection still established is used as it is, and only one that left that state is checked by a round
trip, as before (a broken one is replaced). Over a Unix socket, which has no TCP state, the check polls for
something to read (the server's farewell, or the end of the stream). A server cut off without closing (a
network partition) is found by the first query, as it was by the check.

Why the TCP state rather than a poll: ``getsockopt`` keeps the GIL, and a poll lets go of it. A worker runs a
hundred runs on one GIL, and every let-go hands it to another thread and back (docs/performance.md).
"""

import select
import socket
from typing import Any

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

# The first byte of TCP_INFO is the connection's state; 1 is ESTABLISHED (linux/tcp.h).
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_ESTABLISHED = 1


def may_have_ended(connection: Any) -> bool:
    """Whether the server may have ended ``connection``: it is known closed, its TCP connection is no longer
    established, or (over a Unix socket) the server sent something unasked. Then only a round trip can tell
    whether it still works."""
    if connection.closed or connection.broken:
        return True
    fileno = connection.fileno()
    state = _tcp_state(fileno)
    if state is not None:
        return state != _TCP_ESTABLISHED
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


def _tcp_state(fileno: int) -> int | None:
    """The TCP state of the socket ``fileno``, or None where there is none (a Unix socket, another OS)."""
    if _TCP_INFO is None:
        return None
    try:
        # The family and type given, Python does not look them up (three system calls); TCP_INFO needs neither.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno)
    except OSError:
        return None
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0]
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays the connection's


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        """A persistent connection: Django's check (`SELECT 1`) only when the server may have ended it."""
        if self.pool is None and self.connection is not None and not may_have_ended(self.connection):
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
            if not may_have_ended(connection):
                return connection
            try:
                ConnectionPool.check_connection(connection)
                return connection
            except self.Database.Error:
                self.pool.putconn(connection)
                connection = super().get_new_connection(conn_params)
        return connection
