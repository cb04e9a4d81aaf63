"""Execution durations per connector as a histogram, so `/stats` has a percentile without reading executions.

Each finish adds one to its bucket with a single upsert (in the finishing transaction, like the daily
rollup). Buckets are exact milliseconds below 1 s and keep three significant digits above (1000, 1010 ...
9990, 10000, 10100 ...), so a percentile is off by less than 1 % and a connector has at most a few thousand
rows, however many executions it ran. Pruning executions (retention) leaves the histogram as it is.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import connection

from executions.models import ConnectorDurationBucket

EXACT_BELOW_MS = 1000
SIGNIFICANT_DIGITS = 3

_ADD_SQL = """
    INSERT INTO executions_connectordurationbucket (connector_id, workspace_id, bucket_ms, count)
    VALUES (%s, %s, %s, 1)
    ON CONFLICT (connector_id, bucket_ms) DO UPDATE SET count = executions_connectordurationbucket.count + 1
"""


def bucket_of(duration_ms: int) -> int:
    """The bucket's lower bound: the duration itself below 1 s, else rounded down to three digits."""
    if duration_ms < EXACT_BELOW_MS:
        return max(0, duration_ms)
    step = 10 ** (len(str(duration_ms)) - SIGNIFICANT_DIGITS)
    return duration_ms - duration_ms % step


def add(*, connector_id: Any, workspace_id: Any, duration_ms: int | None) -> None:
    if duration_ms is None:
        return
    field = ConnectorDurationBucket._meta.get_field("workspace").target_field
    params = [
        ConnectorDurationBucket._meta.get_field("connector").target_field.get_db_prep_value(connector_id, connection),
        field.get_db_prep_value(workspace_id, connection),
        bucket_of(duration_ms),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_ADD_SQL, params)


def percentile(*, connector_id: Any, fraction: float) -> int | None:
    """The nearest-rank percentile (e.g. 0.95) of the connector's durations, as its bucket; None without
    any. Reads the connector's buckets only (at most a few thousand small rows)."""
    rows = list(
        ConnectorDurationBucket.objects.filter(connector_id=connector_id)
        .order_by("bucket_ms")
        .values_list("bucket_ms", "count")
    )
    total = sum(count for _, count in rows)
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket_ms, count in rows:
        seen += count
        if seen >= rank:
            return bucket_ms
    return rows[-1][0]
