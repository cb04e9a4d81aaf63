"""TRIAL, not for production: the runs of a worker process on one asyncio loop (CONNECTORS_TRIAL_LOOP=1).

Measures the asyncio executor candidate of docs/performance.md against the threads pool, for the bench's
step shape only (GET steps without auth, pagination or retries): the claim, each checkpoint and the finish
are the same prepared statements on an async psycopg pool, the steps' requests go through an asyncio HTTP/1.1
client with keep-alive and the same address check at connect time, and the Celery thread that delivered the
id waits for the run's end on one future.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import threading
import time
import urllib.parse
from typing import Any

import psycopg
import psycopg_pool
import requests
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql.psycopg_any import get_adapters_template  # type: ignore[import-untyped]
from django.utils import timezone
from requests.structures import CaseInsensitiveDict

from connectors.engine.credentials import WorkspaceNamespace
from connectors.engine.exchange import Exchange, RequestEvent
from connectors.engine.http import AddressPolicy, OutboundResponse, _prepared
from connectors.engine.parsing import stored_request
from connectors.engine.records import StepRecord, utcnow
from connectors.engine.redaction import Redactor, redaction_scope
from connectors.engine.rendering import render_request
from connectors.engine.runner import StepFailure
from connectors.engine.spec import StepState
from core import rows
from credentials.provider import VaultCredentialProvider
from executions import dispatch, events, lifecycle
from executions.heartbeat import heartbeats
from executions.models import Execution, Status
from executions.runtime import HEARTBEAT_GRACE_SECONDS, _deadline, _recorded, get_runner
from executions.step_stats import StepStatsCollector
from monitoring import lifecycle as monitoring

_loop: asyncio.AbstractEventLoop | None = None
_started = threading.Lock()
_state: dict[str, Any] = {}


def run(execution_id: str) -> None:
    """Runs the execution on the process's loop; returns when it has ended here."""
    asyncio.run_coroutine_threadsafe(_run(execution_id), _get_loop()).result()


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _started:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="runs-loop", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_open(), loop).result()
            _loop = loop
    return _loop


async def _open() -> None:
    params = connections["default"].get_connection_params()
    conninfo = psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password") and v}
    )
    context = get_adapters_template(settings.USE_TZ, timezone.get_current_timezone())
    pool = psycopg_pool.AsyncConnectionPool(
        conninfo + " options='-c TimeZone=UTC'",
        min_size=2,
        max_size=settings.DATABASE_POOL_MAX_SIZE,
        kwargs={"autocommit": True, "context": context, "prepare_threshold": 0},
        open=False,
    )
    await pool.open()
    _state["pool"] = pool
    _state["http"] = _Http(AddressPolicy.from_setting(settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS))


async def _statement(sql: str, params: list[Any]) -> Any:
    async with _state["pool"].connection() as conn:
        cursor = conn.cursor()
        await cursor.execute(sql, params, prepare=True)
        return await cursor.fetchone()


async def _run(execution_id: str) -> None:
    now = timezone.now()
    token = lifecycle._claim_token()
    row = await _statement(
        lifecycle._claim_sql(), [str(execution_id), token, settings.CONNECTORS_WORKSPACE_CONCURRENCY, now]
    )
    if row is None:
        return
    execution = rows.from_row(Execution, row)
    if not (execution.status == Status.RUNNING and execution.worker == token):
        wait = (execution.run_after - now).total_seconds() if execution.run_after else 0.0
        dispatch.enqueue(execution.id, delay=max(wait, 0.0))
        return
    redactor = Redactor()
    stats = StepStatsCollector()
    deadline = _deadline(execution.started_at, execution.definition["max_duration_seconds"])
    heartbeats.add(execution, until=deadline + HEARTBEAT_GRACE_SECONDS)
    try:
        with monitoring.execution_scope(execution), redaction_scope(redactor):
            await _advance(execution, redactor, stats, deadline)
    finally:
        heartbeats.discard(execution)


async def _advance(execution: Execution, redactor: Redactor, stats: StepStatsCollector, deadline: float) -> None:
    definition = execution.definition
    runner = get_runner()
    provider = VaultCredentialProvider(execution.workspace_id)
    context: dict[str, Any] = {
        "input": execution.input,
        "contact": {},
        "workspace": WorkspaceNamespace(provider, redactor),
        "steps": {},
    }
    unwritten: list[StepRecord] = []
    records: list[StepRecord] = []
    status = Status.SUCCEEDED
    error = None
    for index, step in enumerate(definition["steps"]):
        for record in unwritten:
            params = [timezone.now(), execution.id, execution.worker, Status.RUNNING, Status.CANCELLED]
            params += [execution.id, record.index, *lifecycle._step_params(lifecycle._step_values(execution, record))]
            if await _statement(lifecycle._checkpoint_sql(), params) is None:
                return
            _recorded(record, None)
        unwritten.clear()
        record = StepRecord(index=index, name=step["name"], status=StepState.FAILED, attempts=1, started_at=utcnow())
        started = time.monotonic()
        exchange = Exchange(runner.client, step, redactor, run_key=str(execution.id))
        try:
            request, _sensitive = render_request(step, context, redactor, exchange=exchange)
            request.timeout = min(float(step["timeout_seconds"]), deadline - time.monotonic())
            exchange.add_idempotency_key(request, page=1)
            record.request = stored_request(request, redactor)
            code = None
            try:
                response = await _state["http"].send(request, runner.client.user_agent)
                code = response.status_code
            finally:
                stats(RequestEvent(step["name"], code, int((time.monotonic() - started) * 1000), False))
            runner._complete(step, record, response, redactor)
        except (StepFailure, OSError, TimeoutError, ValueError) as failure:
            record.error = redactor.scrub_message(str(getattr(failure, "message", failure)) or "request failed")
        record.finished_at = utcnow()
        record.duration_ms = int((time.monotonic() - started) * 1000)
        unwritten.append(record)
        records.append(record)
        if record.status == StepState.SUCCEEDED:
            context["steps"][record.name] = record.context
        else:
            status, error = Status.FAILED, f"step {record.name!r} failed: {record.error}"
            break
    output = {r.name: r.extracted for r in records if r.status == StepState.SUCCEEDED}
    await _finish(execution, unwritten, status, output, error, stats)


async def _finish(
    execution: Execution,
    last_steps: list[StepRecord],
    status: str,
    output: dict,
    error: str | None,
    stats: StepStatsCollector,
) -> None:
    now = timezone.now()
    started = execution.started_at
    changes: dict[str, Any] = {
        "status": status,
        "output": output,
        "error": error,
        "notes": [],
        "finished_at": now,
        "duration_ms": int((now - started).total_seconds() * 1000) if started else None,
        "pending_retry": {},
        "worker": "",
    }
    finishing = lifecycle._Finishing(execution, changes, now, stats.rows(), monitoring.take_requests(), last_steps)
    sql, params = lifecycle._finish_statement(finishing, alone=True)
    row = await _statement(sql, params)
    if row[0] == 1:
        events.execution_finished(execution, status, writers_cleared=True)
    for record in last_steps:
        _recorded(record, None)


class _Http:
    """HTTP/1.1 with keep-alive per origin; the address of each new connection is checked as the threads'
    client checks it (every resolved address must be allowed)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.idle: collections.defaultdict[tuple[str, int], list[Any]] = collections.defaultdict(list)

    async def _connect(self, host: str, port: int) -> Any:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for info in infos:
            self.policy.check(host, ipaddress.ip_address(info[4][0]), port)
        return await asyncio.open_connection(str(infos[0][4][0]), port)

    async def send(self, request: Any, user_agent: str) -> OutboundResponse:
        started = time.monotonic()
        headers = CaseInsensitiveDict(requests.utils.default_headers())
        headers["User-Agent"] = user_agent
        headers.update(request.headers)
        prepared = _prepared(request.method.upper(), request.url, headers, request.params, request.body)
        url = str(prepared.url)
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "", parts.port or 80
        key = (host, port)
        conn = self.idle[key].pop() if self.idle[key] else await self._connect(host, port)
        reader, writer = conn
        lines = [f"{prepared.method} {prepared.path_url} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in prepared.headers.items()]
        body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(loop.time() + request.timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            response_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    response_headers[name.strip()] = value.strip()
            content = await reader.readexactly(int(response_headers.get("Content-Length", "0")))
        if response_headers.get("Connection", "").lower() == "close":
            writer.close()
        else:
            self.idle[key].append(conn)
        return OutboundResponse(
            status_code=int(status_line.split(" ", 2)[1]),
            headers=response_headers,
            content=content,
            url=url,
            redirects=0,
            elapsed_ms=int((time.monotonic() - started) * 1000),
        )
