"""Prometheus metrics, counted right across every web and worker process of a host.

Events (finished executions, steps, HTTP requests) are counted with prometheus-client in multiprocess mode:
each process adds to its own memory-mapped file in PROMETHEUS_MULTIPROC_DIR (settings set it before this
module is imported), and GET /metrics sums the files of every process, living or exited. An increment is a
few microseconds in the process that does the work, with no network round trip and no shared lock.

States (executions queued and running, retries scheduled, the oldest waiting execution, queue depth) are
not counted at all: `StateCollector` reads them from PostgreSQL and the broker at scrape time, with indexed
counts, so they are right whichever host did the work. See docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

EXECUTIONS = Counter("connectors_executions", "Executions that reached a final status, by that status.", ["status"])
STEP_DURATION = Histogram(
    "connectors_step_duration_seconds",
    "Time from a step's first attempt to its final state.",
    ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
HTTP_REQUESTS = Counter(
    "connectors_http_requests", "HTTP requests sent by steps, by status class (2xx..5xx, or error).", ["status_class"]
)
API_LATENCY = Histogram(
    "connectors_api_request_duration_seconds",
    "Time the web app took to answer a request, by view, method and status class.",
    ["view", "method", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EXECUTIONS_STARTED = Counter("connectors_executions_started", "Executions accepted (queued), batches included.")
QUOTA_REFUSALS = Counter("connectors_quota_refusals", "Execution starts refused by a workspace's monthly quota.")

# Every label value exists from the first scrape on (at 0), so a fresh deployment already lists each family and
# rate() has a starting point; in multiprocess mode a child only appears once some process has created it.
for _status in ("succeeded", "failed", "cancelled"):
    EXECUTIONS.labels(status=_status)
for _status in ("succeeded", "failed", "skipped"):
    STEP_DURATION.labels(status=_status)
for _class in ("2xx", "3xx", "4xx", "5xx", "error"):
    HTTP_REQUESTS.labels(status_class=_class)


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status and 100 <= status < 600 else "error"


def registry() -> CollectorRegistry:
    """A fresh registry for one scrape: every process's files plus the states read now."""
    scrape = CollectorRegistry()
    multiprocess.MultiProcessCollector(scrape)
    scrape.register(StateCollector())
    return scrape


class StateCollector(Collector):
    """Gauges read from the database and the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from monitoring import state

        try:
            figures = state.read()
        except Exception:  # a scrape must still answer with the counters when the database is away
            logger.warning("Metrics: could not read execution states", exc_info=True)
            up = GaugeMetricFamily("connectors_state_up", "Whether the states below could be read.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("connectors_state_up", "Whether the states below could be read.")
        up.add_metric([], 1)
        yield up
        yield _gauge(
            "connectors_executions_queued", "Executions waiting to run (including retries).", figures["queued"]
        )
        yield _gauge("connectors_executions_running", "Executions a worker is running now.", figures["running"])
        yield _gauge(
            "connectors_executions_retry_scheduled",
            "Queued executions waiting for a retry that is not due yet.",
            figures["retry_scheduled"],
        )
        yield _gauge(
            "connectors_oldest_queued_execution_age_seconds",
            "How long the oldest due queued execution has been waiting for a worker (0: none).",
            figures["oldest_queued_age"],
        )
        depth = GaugeMetricFamily(
            "connectors_queue_depth", "Messages waiting in the broker, per queue.", labels=["queue"]
        )
        for queue, length in figures["queues"].items():
            depth.add_metric([queue], length)
        yield depth
        yield _gauge(
            "connectors_webhook_deliveries_pending",
            "Outbound webhook deliveries not delivered yet (waiting for an attempt or a retry).",
            figures["webhook_deliveries_pending"],
        )

    def describe(self) -> list[Any]:
        return []


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
