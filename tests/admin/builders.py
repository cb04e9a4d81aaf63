"""Executions, steps and daily rollups as the execution lifecycle leaves them, made without running anything."""

from datetime import timedelta

from django.utils import timezone

from executions.models import ConnectorDailyStats, Execution, ExecutionStep, Status


def execution_row(connector, *, status: str = Status.SUCCEEDED, **fields) -> Execution:
    """An unsaved execution of `connector` (for bulk_create) as the lifecycle would have left it."""
    finished = status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    now = timezone.now()
    defaults = {
        "workspace_id": connector.workspace_id,
        "connector": connector,
        "connector_version": connector.version,
        "definition": connector.definition,
        "status": status,
        "input": {"phone": "+14155550100"},
        "output": {"fetch": {"valid": True}} if status == Status.SUCCEEDED else {},
        "error": "Step fetch failed: 500" if status == Status.FAILED else None,
        "attempts": 1 if finished else 0,
        "started_at": now if finished else None,
        "finished_at": now if finished else None,
        "duration_ms": 120 if finished else None,
    }
    return Execution(**{**defaults, **fields})


def make_executions(connector, count: int, **fields) -> list[Execution]:
    return Execution.objects.bulk_create([execution_row(connector, **fields) for _ in range(count)], batch_size=2000)


def make_execution(connector, **fields) -> Execution:
    return make_executions(connector, 1, **fields)[0]


def make_step(execution, index: int = 0, **fields) -> ExecutionStep:
    defaults = {
        "name": f"step_{index}",
        "status": "succeeded",
        "attempts": 1,
        "request": {"method": "GET", "url": "https://api.example.com/items", "headers": {"Accept": "*/*"}},
        "response": {"status_code": 200, "headers": {"Content-Type": "application/json"}, "body": {"ok": True}},
        "extracted": {"ok": True},
        "duration_ms": 40,
    }
    return ExecutionStep.objects.create(execution=execution, index=index, **{**defaults, **fields})


def make_daily(connector, *, days_ago: int, succeeded: int, failed: int, total_duration_ms: int = 0):
    return ConnectorDailyStats.objects.create(
        connector=connector,
        workspace_id=connector.workspace_id,
        date=timezone.now().date() - timedelta(days=days_ago),
        succeeded=succeeded,
        failed=failed,
        total_duration_ms=total_duration_ms,
    )
