"""Per-step statistics: requests, status codes, retries, 429s and latency percentiles per connector and step.

On the hot path, a `StepStatsCollector` is the runner's `on_request` hook: it counts each request in memory
(no I/O). What one run of an execution in a worker sent, for all its steps, is written with one upsert into
the daily rollup (`StepDailyStats`): on PostgreSQL as part of the statement that finishes the execution
(`upsert`, a CTE of executions.counters.counted_with), so a finished run's requests are counted exactly once
and a finish that lost its claim writes none; a run that waits for a retry or is handed back writes its
requests so far with `flush` when its claim ends. Reading (`step_stats`) is one query over at most 30 days x
20 steps rows, whatever the number of executions. Latency is kept as a histogram over fixed buckets, so
percentiles over any number of days are sums; a percentile is interpolated inside its bucket (buckets are
about 1.5x apart, so it is within that bucket's range of the true value).

A run that dies between its requests and their writing (a killed worker) loses those counts: statistics are a
best-effort rollup, never a reason to slow a run down.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from connectors.engine.exchange import RequestEvent
from executions.models import StepDailyStats
from monitoring import lifecycle as monitoring

logger = logging.getLogger(__name__)

STATS_DAYS = 30
# Upper bounds (ms) of the latency buckets; a last, open bucket holds everything slower.
LATENCY_BUCKETS_MS = (
    5, 10, 15, 25, 40, 60, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10000, 15000, 25000, 40000,
    60000, 120000,
)  # fmt: skip


@dataclass
class _StepCounts:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    latency: Counter[str] = field(default_factory=Counter)


def latency_bucket(elapsed_ms: int) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS_MS, elapsed_ms)


class StepStatsCollector:
    """Counts the requests of one run in memory; `flush` writes them in one statement."""

    def __init__(self) -> None:
        self._steps: defaultdict[str, _StepCounts] = defaultdict(_StepCounts)

    def __call__(self, event: RequestEvent) -> None:
        monitoring.request_sent(event.status_code)  # metrics and the workspace's monthly usage
        counts = self._steps[event.step]
        counts.requests += 1
        counts.retries += event.retry
        counts.rate_limited += event.status_code == 429
        counts.status_codes[str(event.status_code) if event.status_code is not None else "error"] += 1
        counts.latency[str(latency_bucket(event.elapsed_ms))] += 1

    def rows(self) -> list[tuple[str, _StepCounts]]:
        """The counts so far, per step name (kept until `clear`)."""
        return sorted(self._steps.items())

    def clear(self) -> None:
        self._steps.clear()

    def flush(self, *, connector_id: Any, workspace_id: Any) -> None:
        """Adds the counts not yet written with a finish (a run that waits for a retry or was handed back) to
        today's rows (one upsert on PostgreSQL) and forgets them. Database errors are logged, not raised."""
        rows = self.rows()
        if not rows:
            return
        self.clear()
        day = timezone.now().date()
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(*upsert(rows, day, connector_id, workspace_id))
            else:
                add_in_python(connector_id, workspace_id, day, rows)
        except DatabaseError:
            logger.warning("Could not record step statistics of connector %s", connector_id, exc_info=True)


# Adds two {key: count} objects key by key (status codes, latency buckets): each key of the run's object (one or
# two) is added to the day's count and written over it. Expanding and regrouping the day's whole object instead
# cost a five-step finish 297 against 177 µs of the server's CPU (docs/performance.md, twentieth pass).
_SUM_STATUS_CODES = (
    "s.status_codes || COALESCE((SELECT jsonb_object_agg(key, value::bigint + COALESCE((s.status_codes ->> key)"
    "::bigint, 0)) FROM jsonb_each_text(EXCLUDED.status_codes)), '{}'::jsonb)"
)
_SUM_LATENCY = _SUM_STATUS_CODES.replace("status_codes", "latency")

# The rows travel as one array per column: the statement's text and its number of parameters stay the same
# whatever the number of steps (psycopg keeps its parse of a statement only up to 50 parameters, and the server
# its plan per text).
_UPSERT_SQL = """
    INSERT INTO executions_stepdailystats AS s
        (connector_id, workspace_id, date, step_name, requests, retries, rate_limited, status_codes, latency)
    SELECT {owner}, %s, v.* FROM {source}unnest(
        %s::text[], %s::integer[], %s::integer[], %s::integer[], %s::jsonb[], %s::jsonb[]
    ) AS v (step_name, requests, retries, rate_limited, status_codes, latency)
    ON CONFLICT (connector_id, date, step_name) DO UPDATE SET
        requests = s.requests + EXCLUDED.requests,
        retries = s.retries + EXCLUDED.retries,
        rate_limited = s.rate_limited + EXCLUDED.rate_limited,
        status_codes = {status_codes},
        latency = {latency}
"""


def upsert(rows: list[tuple[str, _StepCounts]], day: date, *owner: Any) -> tuple[str, list[Any]]:
    """PostgreSQL: the upsert of `rows` into the day's rollup, as SQL and parameters, for the connector and
    workspace given in `owner`, or, without them, for those of `finished`: then it is a data-modifying CTE of
    the finishing statement (executions.counters.counted_with), which writes only if the run finished."""
    sql = _UPSERT_SQL.format(
        owner="%s, %s" if owner else "finished.connector_id, finished.workspace_id",
        source="" if owner else "finished, ",
        status_codes=_SUM_STATUS_CODES,
        latency=_SUM_LATENCY,
    )
    names = [name for name, _counts in rows]
    step_counts = [counts for _name, counts in rows]
    return sql, [
        *owner,
        day,
        names,
        [c.requests for c in step_counts],
        [c.retries for c in step_counts],
        [c.rate_limited for c in step_counts],
        [json.dumps(c.status_codes) for c in step_counts],
        [json.dumps(c.latency) for c in step_counts],
    ]


def add_in_python(connector_id: Any, workspace_id: Any, day: date, rows: list[tuple[str, _StepCounts]]) -> None:
    """Other databases (SQLite, where writes are serialized anyway): read, add, write in a transaction."""
    with transaction.atomic():
        for name, counts in rows:
            row, _ = StepDailyStats.objects.select_for_update().get_or_create(
                connector_id=connector_id, date=day, step_name=name, defaults={"workspace_id": workspace_id}
            )
            row.requests += counts.requests
            row.retries += counts.retries
            row.rate_limited += counts.rate_limited
            row.status_codes = dict(Counter(row.status_codes) + counts.status_codes)
            row.latency = dict(Counter(row.latency) + counts.latency)
            row.save(update_fields=["requests", "retries", "rate_limited", "status_codes", "latency"])


def step_stats(connector_id: Any, step_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """STEP_NAME -> {"requests", "status_codes", "retries", "rate_limited", "p50_ms", "p95_ms"} over the last
    30 days (one query). Steps named in `step_names` (the current definition) appear even without requests."""
    first_day = timezone.now().date() - timedelta(days=STATS_DAYS - 1)
    rows = StepDailyStats.objects.filter(connector_id=connector_id, date__gte=first_day).values_list(
        "step_name", "requests", "retries", "rate_limited", "status_codes", "latency"
    )
    totals: dict[str, _StepCounts] = {name: _StepCounts() for name in step_names or ()}
    for name, requests, retries, rate_limited, status_codes, latency in rows:
        counts = totals.setdefault(name, _StepCounts())
        counts.requests += requests
        counts.retries += retries
        counts.rate_limited += rate_limited
        counts.status_codes.update(status_codes)
        counts.latency.update(latency)
    return {
        name: {
            "requests": counts.requests,
            "status_codes": dict(sorted(counts.status_codes.items())),
            "retries": counts.retries,
            "rate_limited": counts.rate_limited,
            "p50_ms": percentile(counts.latency, 0.50),
            "p95_ms": percentile(counts.latency, 0.95),
        }
        for name, counts in totals.items()
    }


def percentile(histogram: Counter[str] | dict[str, int], fraction: float) -> int | None:
    """The `fraction` percentile (ms) of a latency histogram, interpolated inside its bucket; None when empty."""
    counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for bucket, count in histogram.items():
        counts[min(int(bucket), len(LATENCY_BUCKETS_MS))] += count
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = LATENCY_BUCKETS_MS[index - 1] if index else 0
            upper = LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else lower
            return round(lower + (upper - lower) * max(rank - seen, 0) / count)
        seen += count
    return LATENCY_BUCKETS_MS[-1]
