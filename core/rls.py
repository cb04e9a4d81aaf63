"""PostgreSQL row-level security: the second wall between workspaces.

The first wall is the application: `workspaces.scoping.WorkspaceScopedViewSet` filters every queryset by the
request's workspace. This is the database's own: should a query forget the filter, the rows of other workspaces
are still not there.

How it works (migration `core/0001_rls` sets it up, PostgreSQL only):

* A role `connectors_app` (NOLOGIN, neither superuser nor BYPASSRLS) is granted to the connecting user, with
  the table privileges the API needs.
* Each workspace-scoped table has row-level security enabled and FORCEd (so it binds the tables' owner too),
  and one policy, `connectors_workspace_isolation`:
  ``current_user <> 'connectors_app' OR <the row's workspace> = current_setting('app.workspace_id')``.
  The tables: workspaces, memberships, connectors, contacts, credentials, executions, daily stats, and
  execution steps (through their execution). A new workspace-scoped table needs a migration adding it
  (tests/security/test_rls.py fails until it has one).
* A workspace-scoped API request runs in one transaction (`request_transaction`), in which the scoping base
  calls `enter_workspace`: ``set_config('role', 'connectors_app', true)`` plus
  ``set_config('app.workspace_id', <id>, true)``. From then on until the transaction ends, the request sees
  and can write only rows of its workspace. Under connectors_app without a workspace id nothing is visible.
* Everything else (authentication, workers, the admin console, operator commands, migrations) runs as the
  connecting role, which the policy admits (a superuser bypasses RLS anyway), so it works as without RLS.

What it is not: a defence against SQL injection (injected SQL could reset the role). It guards against the
likelier bug, a query without its workspace filter. On SQLite there is no RLS; the application layer alone
isolates workspaces there (see docs/security.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from core import rows

logger = logging.getLogger(__name__)

APP_ROLE = "connectors_app"
WORKSPACE_SETTING = "app.workspace_id"
POLICY_NAME = "connectors_workspace_isolation"

_availability: dict[tuple[str, str], bool] = {}
_availability_lock = threading.Lock()
_entered = threading.local()


def is_available(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether this database enforces the workspace policies: PostgreSQL, the migration applied, and the
    connecting user allowed to switch to connectors_app. Checked once per process and database."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    key = (using, str(connection.settings_dict["NAME"]))
    if key not in _availability:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_has_role(current_user, r.oid, 'MEMBER')"
                " AND EXISTS (SELECT 1 FROM pg_policy WHERE polname = %s)"
                " FROM pg_roles r WHERE r.rolname = %s",
                [POLICY_NAME, APP_ROLE],
            )
            row = cursor.fetchone()
        available = bool(row and row[0])
        if not available:
            logger.warning(
                "Row-level security is not active on database %s (role %s missing, not granted to the "
                "connecting user, or migrations not applied); workspaces are isolated by the application only.",
                key[1],
                APP_ROLE,
            )
        with _availability_lock:
            _availability[key] = available
    return _availability[key]


def enter_workspace(workspace_id, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Switches the current transaction to `workspace_id`'s row-level-security context, until it ends.

    Returns False (and does nothing) where RLS is not available. Raises RuntimeError outside a transaction,
    where the switch would not hold.
    """
    if not is_available(using):
        return False
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("enter_workspace() needs a transaction (run the request in request_transaction()).")
    with rows.prepared_cursor(using) as cursor:  # every request of a workspace sends it
        cursor.execute(
            "SELECT set_config('role', %s, true), set_config(%s, %s, true)",
            [APP_ROLE, WORKSPACE_SETTING, str(workspace_id)],
        )
    _entered_aliases().add(using)
    return True


def leave_workspace(using: str = DEFAULT_DB_ALIAS) -> None:
    """Returns the current transaction to the connecting role (only needed before the transaction ends)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT set_config('role', 'none', true), set_config(%s, '', true)", [WORKSPACE_SETTING])
    _entered_aliases().discard(using)


@contextmanager
def request_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Runs a workspace-scoped request in one transaction, or inside the enclosing one if there is one.

    A workspace context entered inside ends with the transaction (COMMIT and ROLLBACK end SET LOCAL
    settings). When the request runs inside an enclosing transaction (tests, or a caller's atomic block), the
    context is left explicitly on the way out, so the enclosing code never runs as the workspace.
    """
    connection = connections[using]
    enclosed = connection.in_atomic_block
    _entered_aliases().discard(using)
    with transaction.atomic(using=using, savepoint=False):
        yield
        if enclosed and using in _entered_aliases() and not _transaction_failed(connection):
            leave_workspace(using)
    _entered_aliases().discard(using)


def _transaction_failed(connection) -> bool:
    """Whether the transaction is aborted (a statement failed): it can only be rolled back, which also ends
    the workspace context."""
    if connection.needs_rollback:
        return True
    from psycopg import pq

    return connection.connection.info.transaction_status == pq.TransactionStatus.INERROR


def _entered_aliases() -> set[str]:
    if not hasattr(_entered, "aliases"):
        _entered.aliases = set()
    return _entered.aliases
