"""The counters of finished executions: the connector's totals and the per-day rollup behind its statistics.

Each is an increment (`F()` or an upsert) in the transaction that sets the execution's final status, so every
execution is counted exactly once however many workers race, and statistics stay cheap however many
executions there are.
"""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from connectors.models import Connector
from executions import histogram
from executions.models import ConnectorDailyStats, Status


def count(connector_id: UUID, workspace_id: UUID, status: str, duration_ms: int | None, now: datetime) -> None:
    """Counts a finished execution once: the connector's counters, and the daily rollup for succeeded and failed
    runs. Called in the transaction that sets the final status, so a run is counted exactly when it finishes."""
    succeeded = int(status == Status.SUCCEEDED)
    failed = int(status == Status.FAILED)
    Connector.objects.filter(pk=connector_id).update(
        total_executions=F("total_executions") + 1,
        successful_executions=F("successful_executions") + succeeded,
        failed_executions=F("failed_executions") + failed,
        last_executed_at=now,
    )
    if not (succeeded or failed):
        return
    histogram.add(connector_id=connector_id, workspace_id=workspace_id, duration_ms=duration_ms)  # p95 of /stats
    day = now.date()
    if connection.vendor == "postgresql":
        _add_to_daily_rollup(connector_id, workspace_id, day, succeeded, failed, duration_ms or 0)
        return
    updated = ConnectorDailyStats.objects.filter(connector_id=connector_id, date=day).update(
        succeeded=F("succeeded") + succeeded,
        failed=F("failed") + failed,
        total_duration_ms=F("total_duration_ms") + (duration_ms or 0),
    )
    if not updated:
        try:
            with transaction.atomic():
                ConnectorDailyStats.objects.create(
                    connector_id=connector_id,
                    workspace_id=workspace_id,
                    date=day,
                    succeeded=succeeded,
                    failed=failed,
                    total_duration_ms=duration_ms or 0,
                )
        except IntegrityError:
            ConnectorDailyStats.objects.filter(connector_id=connector_id, date=day).update(
                succeeded=F("succeeded") + succeeded,
                failed=F("failed") + failed,
                total_duration_ms=F("total_duration_ms") + (duration_ms or 0),
            )


_DAILY_ROLLUP_SQL = """
    INSERT INTO executions_connectordailystats (connector_id, workspace_id, date, succeeded, failed, total_duration_ms)
    VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (connector_id, date) DO UPDATE SET
        succeeded = executions_connectordailystats.succeeded + EXCLUDED.succeeded,
        failed = executions_connectordailystats.failed + EXCLUDED.failed,
        total_duration_ms = executions_connectordailystats.total_duration_ms + EXCLUDED.total_duration_ms
"""


def _add_to_daily_rollup(
    connector_id: UUID, workspace_id: UUID, day: date, succeeded: int, failed: int, duration_ms: int
) -> None:
    """PostgreSQL: one upsert instead of UPDATE, then INSERT in a savepoint, then UPDATE again on a race."""
    with connection.cursor() as cursor:
        cursor.execute(_DAILY_ROLLUP_SQL, [connector_id, workspace_id, day, succeeded, failed, duration_ms])


def counted_with(
    finishing: str,
    params: list[Any],
    *,
    status: str,
    duration_ms: int | None,
    now: datetime,
    also: Sequence[tuple[str, list[Any]]] = (),
) -> tuple[str, list[Any]]:
    """PostgreSQL: `finishing` (an UPDATE that finishes at most one execution, `RETURNING connector_id,
    workspace_id`) and the counting of what it finished, as one statement that returns how many it finished.
    The same increments as `count`, in the same transaction as the final status (the statement's own).
    `also` adds more data-modifying CTEs (SQL and parameters) that read `finished`, so they too write only
    if the UPDATE matched (the run's step statistics and HTTP requests)."""
    succeeded = int(status == Status.SUCCEEDED)
    failed = int(status == Status.FAILED)
    sql = f"""
        WITH finished AS ({finishing}),
        counted AS (
            UPDATE connectors_connector SET
                total_executions = total_executions + 1,
                successful_executions = successful_executions + %s,
                failed_executions = failed_executions + %s,
                last_executed_at = %s
            FROM finished WHERE connectors_connector.id = finished.connector_id
        ),
        bucketed AS (
            INSERT INTO executions_connectordurationbucket (connector_id, workspace_id, bucket_ms, count)
            SELECT connector_id, workspace_id, %s, 1 FROM finished WHERE %s
            ON CONFLICT (connector_id, bucket_ms) DO UPDATE SET count = executions_connectordurationbucket.count + 1
        ),
        rolled AS (
            INSERT INTO executions_connectordailystats
                (connector_id, workspace_id, date, succeeded, failed, total_duration_ms)
            SELECT connector_id, workspace_id, %s, %s, %s, %s FROM finished WHERE %s
            ON CONFLICT (connector_id, date) DO UPDATE SET
                succeeded = executions_connectordailystats.succeeded + EXCLUDED.succeeded,
                failed = executions_connectordailystats.failed + EXCLUDED.failed,
                total_duration_ms = executions_connectordailystats.total_duration_ms + EXCLUDED.total_duration_ms
        ){"".join(f", also_{n} AS ({cte})" for n, (cte, _) in enumerate(also))}
        SELECT count(*) FROM finished
    """  # noqa: S608 - `finishing` and `also` are the callers' SQL text; every value is a parameter
    timed = duration_ms is not None and bool(succeeded or failed)  # the histogram behind /stats' p95
    counting = [succeeded, failed, now, histogram.bucket_of(duration_ms or 0), timed]
    counting += [now.date(), succeeded, failed, duration_ms or 0, bool(succeeded or failed)]
    return sql, [*params, *counting, *(value for _, more in also for value in more)]
