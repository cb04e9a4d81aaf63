"""Usage counting and the monthly execution quota.

Every start of an execution is counted against the workspace's executions_per_month in the transaction that
creates it, and a refused start changes nothing:

* A single execution (`count_execution_start`): on PostgreSQL the database counts it when its transaction
  commits (the deferred constraint trigger `usage_executions_quota`, migration `usage/0003`), so the
  workspace's row for the month is locked only while the COMMIT runs inside the server, not across a round
  trip to the web thread that sent it. A refused start fails the COMMIT; `quota_refusals`, around every
  transaction that inserts executions, raises QuotaExceeded for it. On SQLite it is `reserve_executions`.
* A batch (`reserve_executions`, before its rows are inserted): a single INSERT ... ON CONFLICT DO UPDATE on
  the workspace's row for the month, which adds the executions only if the total stays within the quota, so
  the batch is refused whole before anything is written.

Either way PostgreSQL re-checks the condition on the row as it is after any concurrent increment (the row is
locked until the transaction ends), so concurrent starts can never push usage past the quota. The cost is one
row update per execution, however large the workspace.

HTTP requests sent by steps are counted in rows of their own (MonthlyHttpRequests), added by the statement
that finishes a run: on the reservation's row, every finish waited for the execute calls holding it, and every
execute call for the finishes.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.services import record
from core import rows
from core.exceptions import DomainError
from monitoring.metrics import EXECUTIONS_STARTED, QUOTA_REFUSALS
from usage.models import MonthlyUsage, WorkspaceQuota
from usage.months import month_of, seconds_to_next_month
from workspaces.models import Workspace


class QuotaExceeded(DomainError):
    """429 quota_exceeded; `retry_after` is the number of seconds until the next month starts (UTC)."""

    status_code = 429
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


QUOTA_CONSTRAINT = "usage_executions_quota"  # the trigger that counts a single start at commit (usage/0003)
_QUOTA_ALLOWS = """
    NOT EXISTS (SELECT 1 FROM usage_workspacequota q WHERE q.workspace_id = {workspace}
                AND q.executions_per_month IS NOT NULL AND {total} > q.executions_per_month)
"""
_RESERVE_SQL = f"""
    INSERT INTO usage_monthlyusage (workspace_id, month, executions)
    SELECT %s, %s, %s WHERE {_QUOTA_ALLOWS.format(workspace="%s", total="%s")}
    ON CONFLICT (workspace_id, month) DO UPDATE SET executions = usage_monthlyusage.executions + EXCLUDED.executions
    WHERE {
    _QUOTA_ALLOWS.format(
        workspace="usage_monthlyusage.workspace_id", total="usage_monthlyusage.executions + EXCLUDED.executions"
    )
}
    RETURNING executions
"""
_ADD_REQUESTS_SQL = """
    INSERT INTO usage_monthlyhttprequests (workspace_id, month, http_requests) VALUES (%s, %s, %s)
    ON CONFLICT (workspace_id, month) DO UPDATE
    SET http_requests = usage_monthlyhttprequests.http_requests + EXCLUDED.http_requests
"""
_ADD_FINISHED_REQUESTS_SQL = """
    INSERT INTO usage_monthlyhttprequests (workspace_id, month, http_requests)
    SELECT workspace_id, %s, %s FROM finished
    ON CONFLICT (workspace_id, month) DO UPDATE
    SET http_requests = usage_monthlyhttprequests.http_requests + EXCLUDED.http_requests
"""


def _db_workspace_id(workspace_id: Any) -> Any:
    return MonthlyUsage._meta.get_field("workspace").target_field.get_db_prep_value(workspace_id, connection)


def reserve_executions(*, workspace_id: Any, count: int = 1, now: datetime | None = None) -> int:
    """Counts `count` executions about to start in the workspace this month; returns the month's new total.

    Raises QuotaExceeded, counting nothing, when that would pass the workspace's executions_per_month (a
    batch is thus refused whole). Call it inside the transaction that creates the executions: if that
    transaction rolls back, so does the count.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    moment = now
    month = month_of(moment)
    ws = _db_workspace_id(workspace_id)
    with rows.hot_cursor(connection) as cursor:  # on every execute call: planning it cost more than running it
        cursor.execute(_RESERVE_SQL, [ws, month, count, ws, count])
        row = cursor.fetchone()
    if row is None:
        raise _refusal(moment)
    EXECUTIONS_STARTED.inc(count)  # in memory; a start whose transaction rolls back (rare) stays counted
    return int(row[0])


def count_execution_start(*, workspace_id: Any) -> None:
    """Counts the execution whose row the current transaction has just inserted (not one of a batch): on
    PostgreSQL the database counts it when the transaction commits, and a refusal fails the COMMIT (wrap the
    transaction in `quota_refusals`); elsewhere `reserve_executions` counts it now."""
    if connection.vendor != "postgresql":
        reserve_executions(workspace_id=workspace_id, count=1)
        return
    transaction.on_commit(EXECUTIONS_STARTED.inc)  # once the database has counted it too


def count_starts_at_insert() -> None:
    """Makes the rest of the current transaction count each single start at its INSERT, as on SQLite, rather
    than at COMMIT (PostgreSQL; one statement): for a caller that starts an execution inside a savepoint of a
    longer transaction and goes on after a refusal."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET CONSTRAINTS {QUOTA_CONSTRAINT} IMMEDIATE")


@contextmanager
def quota_refusals() -> Iterator[None]:
    """Raises QuotaExceeded for a COMMIT that the database refused because a start passed the quota
    (`count_execution_start`). Wrap every transaction that inserts executions, where it commits."""
    try:
        yield
    except IntegrityError as error:
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) != QUOTA_CONSTRAINT:
            raise
        raise _refusal(timezone.now()) from None


def _refusal(moment: datetime | None) -> QuotaExceeded:
    QUOTA_REFUSALS.inc()
    return QuotaExceeded(
        "The workspace has used its executions for this month (executions_per_month); "
        "ask for a higher quota or wait for the next month.",
        retry_after=seconds_to_next_month(moment),
    )


def add_http_requests(*, workspace_id: Any, count: int, now: datetime | None = None) -> None:
    """Adds `count` HTTP requests sent by steps to the workspace's usage of the month (one statement)."""
    if count <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute(_ADD_REQUESTS_SQL, [_db_workspace_id(workspace_id), month_of(now), count])


def http_requests_of_finished(*, count: int, now: datetime) -> tuple[str, list[Any]]:
    """PostgreSQL: `add_http_requests` as a data-modifying CTE of the statement that finishes an execution
    (executions.counters.counted_with), for the workspace of `finished`: the requests are added only if the
    run finished, in the same commit."""
    return _ADD_FINISHED_REQUESTS_SQL, [month_of(now), count]


@transaction.atomic
def quota_set(*, workspace: Workspace, executions_per_month: int | None) -> WorkspaceQuota:
    """Sets (or, with None, lifts) the workspace's monthly execution quota. Usage already counted stays: a
    quota below it stops new executions until the next month."""
    if executions_per_month is not None and (isinstance(executions_per_month, bool) or executions_per_month < 0):
        raise DomainError("executions_per_month must be a non-negative integer or null.")
    quota, _ = WorkspaceQuota.objects.select_for_update().get_or_create(workspace=workspace)
    if quota.executions_per_month != executions_per_month:
        previous = quota.executions_per_month
        quota.executions_per_month = executions_per_month
        quota.save(update_fields=["executions_per_month", "updated_at"])
        record(
            workspace_id=workspace.pk,
            action="quota.updated",
            target=workspace,
            details={"executions_per_month": [previous, executions_per_month]},
        )
    return quota
