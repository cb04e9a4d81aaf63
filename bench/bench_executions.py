"""Execution throughput, latency, CPU per execution and memory, end to end, with the production processes.

Run by hand (never part of the test suite); everything it talks to is on 127.0.0.1. The stable interface
(outside tools drive it):

    python bench/bench_executions.py --scenario S1|S2|S3|S4 [--target-url URL] [--duration S] --json

runs one scenario and prints one JSON object as its last line, with at least `exec_per_s`, `p50_ms`,
`p95_ms`, `execute_p95_ms`, `cpu_ms_per_exec` and `rss_mb`. And

    python bench/bench_executions.py --all [--duration S]

runs the four scenarios one after another and prints the table docs/performance.md keeps.

| scenario | target | steps | closed-loop clients |
|---|---|---|---|
| S1 | fast (answers at once) | 1 | 8 |
| S2 | fast | 5, each step's URL templated from the previous step's output | 8 |
| S3 | answers after 200 ms | 1 | 100 |
| S4 | answers after 200 ms | 5 | 100 |

What it starts, as child processes, exactly as README's "Processes" section runs production: gunicorn
(`WEB_COMMAND`), the worker (`WORKER_COMMAND` with `WORKER_ENVIRONMENT`, one per `--workers`), and its own
target, an asyncio HTTP server with keep-alive and a fixed delay, unless `--target-url` names another one. Step 1 is
`GET URL/step1?run=N`, step i is `GET URL/stepi?prev={{steps.step<i-1>.value}}`; the target answers
`{"ok": true, "source": "stepi", "value": 42}`. PostgreSQL comes from `DATABASE_URL` (database name replaced
by `--database`, default `connectors_bench`, created and migrated if missing, its execution tables emptied),
Redis from `--redis-url` (db 14 by default, flushed). The processes log as production does by default
(`LOG_LEVEL` from the environment, else INFO: an access line per request), into `--log-dir`.

Each client POSTs /execute (with an Idempotency-Key, over a keep-alive connection of its own), waits until
its execution has finished, and starts the next. It learns of the end from the announcement the service
publishes on Redis for `Prefer: wait` (executions.waiting), with one query per second for the awaited
statuses as a fallback; the statuses are counted in one query after the run. The bench itself thus costs
little CPU on the machine it measures. The clients run without a pause through the warm-up (`--warmup`
seconds), the measured window (`--duration`) and a drain after it; only the window counts, while every client
is busy:

* `exec_per_s`: succeeded executions that finished in the window, per second; `p50_ms`/`p95_ms`: end to end
  (POST to seen finished) of those executions; `execute_p95_ms`: their execute calls alone;
* `cpu_ms_per_exec`: CPU of the service's processes (gunicorn and worker trees, their PostgreSQL backends,
  Redis) in the window per execution finished in it, from /proc, which stays meaningful on a busy machine;
  `cpu_ms_by_class` splits it, and gives the target and the clients (this process) apart;
* `runqueue_ms_per_exec_by_class` / `slices_per_exec_by_class`: per execution, how long the threads of each
  service class waited runnable for a CPU, and how many times they were scheduled (from each thread's
  /proc/<pid>/task/<tid>/schedstat): where a loaded machine's latency goes, as CPU per execution does not show;
* `rss_mb`: resident memory of every service process at the window's end (gunicorn and worker trees and
  Redis by RSS; PostgreSQL backends by PSS, as most of their RSS is the shared buffer pool); `worker_rss_mb`
  the workers' part, and `worker_rss_growth_mb` how much they grew during the window;
* `web_start_s` / `worker_start_s`: spawn to the first /healthz 200, and to the worker's "ready";
* `load_before` / `load_after`: the machine's load average; other work on the machine shows in wall-clock
  figures (not much in CPU per execution): check `uptime` first;
* with `--pg-waits` (off by default: it sends a query every 10 ms): `pg_waiting_by_event`, how many of the
  service's PostgreSQL backends were, on average over the window, running or waiting, by wait event
  (`Lock:transactionid` for a row another transaction holds, `IO:WALSync` for a commit's flush), and
  `pg_lock_waits_by_statement`, the backends waiting for a lock, by the first words of their statement.

`--profile-only` prints the queries per execute call and per execution and a cProfile of a worker's run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import http.client
import io
import json
import math
import os
import pstats
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TERMINAL = ("succeeded", "failed", "cancelled")
FALLBACK_POLL_SECONDS = 1.0
ENDED_CHANNEL_PREFIX = "connectors:execution-ended:"  # executions.waiting.CHANNEL_PREFIX (not imported: no Django yet)
TOKEN_RENEW_SECONDS = 10 * 60

# The production processes, as README's "Processes" section gives them.
WEB_COMMAND = ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]  # one worker per core
WORKER_COMMAND = ["celery", "-A", "config", "worker"]  # the settings choose the pool and its 200 threads
WORKER_ENVIRONMENT = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}  # the Procfile's: no per-thread malloc caches


@dataclass(frozen=True)
class Scenario:
    steps: int
    clients: int
    delay_ms: float


SCENARIOS = {
    "S1": Scenario(steps=1, clients=8, delay_ms=0),
    "S2": Scenario(steps=5, clients=8, delay_ms=0),
    "S3": Scenario(steps=1, clients=100, delay_ms=200),
    "S4": Scenario(steps=5, clients=100, delay_ms=200),
}


# ------------------------------------------------------------------------------------------------------------
# The target: an asyncio HTTP/1.1 server with keep-alive and a fixed delay (`--serve-target PORT DELAY_MS`)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            path = request_line.split(b" ")[1].decode("latin-1")
            source = path.split("?", 1)[0].strip("/") or "root"
            if delay:
                await asyncio.sleep(delay)
            body = json.dumps({"ok": True, "source": source, "value": 42}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


def serve_target(port: int, delay_ms: float) -> None:
    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, delay_ms / 1000), "127.0.0.1", port, backlog=1024
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------------------
# CPU and memory from /proc


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds incl. reaped children, rss kB) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / CLK_TCK, int(fields[21]) * PAGE_KB


def _table() -> dict[int, tuple[int, float, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (entry := _stat(int(name))) is not None:
            table[int(name)] = entry
    return table


def tree(roots: list[int]) -> dict[int, tuple[float, int]]:
    """(cpu seconds, rss kB) of every process in the trees under `roots`."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu, _rss) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid][1:]
            todo.extend(children.get(pid, ()))
    return found


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def scheduling(pids: list[int]) -> dict[tuple[int, str], tuple[int, int]]:
    """(ns spent runnable but waiting for a CPU, time slices) of every thread of `pids`, keyed by (pid, thread
    id), from /proc/<pid>/task/<tid>/schedstat."""
    threads = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, ValueError):
                    _ran, waited, slices = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                    threads[pid, tid] = (int(waited), int(slices))
    return threads


def scheduling_delta(before: dict, after: dict) -> tuple[float, int]:
    """(ms waited for a CPU, time slices) between two `scheduling` readings, over the threads alive at the
    second one (a thread started in between counts from zero)."""
    waited = slices = 0
    for key, (wait_ns, count) in after.items():
        wait_before, count_before = before.get(key, (0, 0))
        waited += wait_ns - wait_before
        slices += count - count_before
    return waited / 1e6, slices


def cpu_delta(before: dict[int, tuple[float, int]], after: dict[int, tuple[float, int]]) -> float:
    return sum(cpu - before.get(pid, (0.0, 0))[0] for pid, (cpu, _rss) in after.items())


def rss_mb(processes: dict[int, tuple[float, int]]) -> float:
    return sum(rss for _cpu, rss in processes.values()) / 1024


# ------------------------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    sink = log.open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for_log(log: Path, marker: str, process: subprocess.Popen, timeout: float = 60) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        if marker in log.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise SystemExit(f"{process.args[0]} not ready after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import requests

    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited early:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.02)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


# ------------------------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Result:
    scenario: str
    elapsed: float = 0.0
    succeeded: int = 0
    finished: int = 0
    api_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    runqueue_ms: dict[str, float] = field(default_factory=dict)
    slices: dict[str, int] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    worker_rss_growth_mb: float = 0.0
    pg_samples: int = 0
    pg_waits: dict[str, int] = field(default_factory=dict)
    pg_lock_waits: dict[str, int] = field(default_factory=dict)

    def per_exec(self, *groups: str) -> float:
        return 1000 * sum(self.cpu[g] for g in groups) / self.finished if self.finished else float("nan")


SERVICE = ("web", "worker", "postgres", "redis")
PG_WAIT_SAMPLE_SECONDS = 0.01


def sample_pg_waits(database_url: str, database: str, result: Result, until: threading.Event) -> None:
    """Counts, every PG_WAIT_SAMPLE_SECONDS until `until` is set, the service's backends of `database` that
    are running or waiting for something other than their client (pg_stat_activity), by wait event, and those
    waiting for a lock by their statement's first words."""
    import psycopg

    waits: dict[str, int] = {}
    lock_waits: dict[str, int] = {}
    with psycopg.connect(database_url, autocommit=True, application_name="bench-waits") as db:
        while not until.is_set():
            rows = db.execute(
                "SELECT wait_event_type, wait_event, left(query, 48) FROM pg_stat_activity WHERE datname = %s"
                " AND application_name NOT LIKE 'bench-%%'"
                " AND (state = 'active' OR wait_event_type IS DISTINCT FROM 'Client')",
                [database],
            ).fetchall()
            for kind, event, query in rows:
                name = f"{kind}:{event}" if kind else "running"
                waits[name] = waits.get(name, 0) + 1
                if kind == "Lock":
                    lock_waits[query] = lock_waits.get(query, 0) + 1
            result.pg_samples += 1
            until.wait(PG_WAIT_SAMPLE_SECONDS)
    result.pg_waits, result.pg_lock_waits = waits, lock_waits


def backend_pids(database_url: str, database: str) -> list[int]:
    """The PostgreSQL backends of `database` but a bench's own (its connections are named bench-*)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, application_name="bench-read") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name NOT LIKE 'bench-%%'", [database]
        ).fetchall()
    return [row[0] for row in rows]


def create_database(admin_url: str, database: str) -> list[tuple[int, str]]:
    """Creates `database` on `admin_url`'s server unless it exists; returns the client connections it already has
    (pid, application name), which a bench must not share its database with (bench_n8n.py uses it too)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
        return conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            [database],
        ).fetchall()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.logs = Path(args.log_dir)
        self.logs.mkdir(parents=True, exist_ok=True)
        base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/connectors")
        self.database_url = urlunsplit(base._replace(path=f"/{args.database}"))
        self.admin_url = urlunsplit(base._replace(scheme="postgresql", path="/postgres"))
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CI")},
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": args.redis_url,
            "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1,localhost",
            "CONNECTORS_WORKSPACE_CONCURRENCY": "1000",
            "CONNECTORS_ENCRYPTION_KEYS": f"bench:{key}",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_EXECUTE": "1000000/min",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.target_process: subprocess.Popen | None = None

    # --- set-up ---

    def prepare_database(self) -> None:
        if others := create_database(self.admin_url, self.args.database):
            # A worker left running (a bench killed with SIGKILL, a process of one's own) would take this run's
            # executions, and its CPU would not be counted: the figures would be wrong without any sign.
            found = ", ".join(f"pid {pid} ({name or 'no name'})" for pid, name in others)
            raise SystemExit(
                f"Other processes are connected to database {self.args.database}: {found}. Stop them (a worker or "
                "gunicorn left by an interrupted bench: `pkill -f 'celery -A config worker'`), or give this run "
                "its own --database."
            )
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        self.empty_tables()

    def empty_tables(self) -> None:
        """Every scenario starts from empty execution tables: leftovers would weigh on every claim's running
        count, and grown tables and indexes would make scenarios incomparable."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE executions_executionstep, executions_execution, executions_connectordailystats CASCADE"
            )
            # Not ANALYZE: statistics of an empty table make the planner choose sequential scans (the claim's
            # cached plan among them), which then read the whole table on every claim as it grows during the
            # scenario. A truncated table has no statistics; the planner then assumes a table of some size
            # and uses the indexes, as it does on a production table.

    def setup_django(self) -> None:
        os.environ.update(self.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def create_fixtures(self) -> None:
        from rest_framework_simplejwt.tokens import RefreshToken

        from workspaces.models import User
        from workspaces.services import workspace_create

        email = f"bench-{secrets.token_hex(4)}@bench.test"
        user = User.objects.create_user(email=email, password=secrets.token_urlsafe(16))
        self.workspace = workspace_create(name="Bench", owner=user)
        self.user = user
        self.token = str(RefreshToken.for_user(user).access_token)
        self.token_minted = time.monotonic()
        self.token_lock = threading.Lock()

    def bearer(self) -> str:
        """The access token, minted again before it expires (15 minutes): a soak runs longer than one token."""
        from rest_framework_simplejwt.tokens import RefreshToken

        with self.token_lock:
            if time.monotonic() - self.token_minted > TOKEN_RENEW_SECONDS:
                self.token = str(RefreshToken.for_user(self.user).access_token)
                self.token_minted = time.monotonic()
            return self.token

    def connector(self, target: str, steps: int):
        from connectors.services import connector_create
        from connectors.validation import DefinitionSerializer

        chain = [{"name": "step1", "url": f"{target}/step1?run={{{{input.run}}}}", "extract": {"value": "value"}}]
        chain += [
            {
                "name": f"step{i}",
                "url": f"{target}/step{i}?prev={{{{steps.step{i - 1}.value}}}}",
                "extract": {"value": "value"},
            }
            for i in range(2, steps + 1)
        ]
        serializer = DefinitionSerializer(data={"steps": chain})
        serializer.is_valid(raise_exception=True)
        return connector_create(
            workspace=self.workspace,
            data={"name": f"bench {steps} step(s) {secrets.token_hex(3)}", **serializer.validated_data},
        )

    # --- processes ---

    def start_target(self, delay_ms: float) -> str:
        if self.target_process is not None:
            stop(self.target_process)
        port = free_port()
        log = self.logs / "target.log"
        self.target_process = start([PY, __file__, "--serve-target", str(port), str(delay_ms)], self.env, log)
        wait_for_log(log, "ready", self.target_process)
        return f"http://127.0.0.1:{port}"

    def start_web(self) -> str:
        port = free_port()
        log = self.logs / "gunicorn.log"
        command = [str(BIN / WEB_COMMAND[0]), *WEB_COMMAND[1:], *shlex.split(self.args.web_args)]
        command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        spawned = time.monotonic()
        self.web = start(command, self.env, log)
        self.processes.append(self.web)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", self.web, log)
        self.web_start_s = time.monotonic() - spawned
        return f"http://127.0.0.1:{port}"

    def start_workers(self) -> None:
        command = [str(BIN / WORKER_COMMAND[0]), *WORKER_COMMAND[1:]]
        env = {**self.env, **WORKER_ENVIRONMENT}
        if self.args.pool:
            env["CELERY_WORKER_POOL"] = self.args.pool
        if self.args.concurrency:
            command.append(f"--concurrency={self.args.concurrency}")
        command += ["--without-gossip", "--without-mingle", "--loglevel=INFO", *shlex.split(self.args.worker_args)]
        starts = []
        for n in range(self.args.workers):
            log = self.logs / f"worker-{n}.log"
            spawned = time.monotonic()
            worker = start([*command, f"--hostname=bench{n}-{secrets.token_hex(3)}@%h"], env, log)
            wait_for_log(log, " ready.", worker)
            starts.append(time.monotonic() - spawned)
            self.workers.append(worker)
            self.processes.append(worker)
        self.worker_start_s = max(starts)

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.args.redis_url).flushdb()

    def redis_pid(self) -> int | None:
        import redis

        with contextlib.suppress(redis.RedisError):
            return int(redis.Redis.from_url(self.args.redis_url).info("server")["process_id"])
        return None

    def snapshot(self) -> dict[str, dict[int, tuple[float, int]]]:
        redis_pid = self.redis_pid()
        backends = tree(backend_pids(self.database_url, self.args.database))
        return {
            "web": tree([self.web.pid]),
            "worker": tree([w.pid for w in self.workers]),
            "postgres": {pid: (cpu, pss_kb(pid)) for pid, (cpu, _rss) in backends.items()},
            "redis": tree([redis_pid] if redis_pid else []),
            "target": tree([self.target_process.pid]) if self.target_process else {},
        }

    # --- one scenario ---

    def run_scenario(self, name: str, base: str, target: str) -> Result:
        import psycopg
        import redis

        scenario = SCENARIOS[name]
        clients = self.args.clients or scenario.clients
        connector = self.connector(target, self.args.steps or scenario.steps)
        address = urlsplit(base)
        path = f"/api/v1/connectors/{connector.id}/execute"
        headers = {"X-Workspace-ID": str(self.workspace.id), "Content-Type": "application/json"}
        result = Result(name)
        lock = threading.Lock()
        waiting: dict[str, threading.Event] = {}
        ended_unclaimed: set[str] = set()  # announced before its client was waiting for it
        polled_first: set[str] = set()  # seen ended by the fallback poller; its announcement is still to come
        finished_ids: list[str] = []
        listening = threading.Event()
        failures: list[str] = []
        window = [math.inf, math.inf]  # completions between these two instants are counted
        deadline = math.inf  # the clients start no execution after it
        run_numbers = iter(range(10**9))

        def ended(execution_ids: list[str], *, announced: bool) -> None:
            with lock:
                for execution_id in execution_ids:
                    event = waiting.pop(execution_id, None)
                    if event is not None:
                        event.set()
                        if not announced:
                            polled_first.add(execution_id)
                    elif announced and execution_id in polled_first:
                        polled_first.discard(execution_id)
                    elif announced:
                        ended_unclaimed.add(execution_id)

        def listener(subscribed: threading.Event) -> None:
            """The service announces each end on Redis for `Prefer: wait` (executions.waiting): one message per
            execution, no query. The fallback poller covers an announcement lost on the way."""
            pubsub = redis.Redis.from_url(self.args.redis_url).pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(ENDED_CHANNEL_PREFIX + "*")
            subscribed.set()
            try:
                while listening.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None:
                        ended([message["channel"].decode()[len(ENDED_CHANNEL_PREFIX) :]], announced=True)
            finally:
                pubsub.close()

        def poller() -> None:
            with psycopg.connect(self.database_url, autocommit=True, application_name="bench-poll") as db:
                while listening.is_set():
                    time.sleep(FALLBACK_POLL_SECONDS)
                    with lock:
                        pending = list(waiting)
                    if pending:
                        rows = db.execute(
                            "SELECT id::text FROM executions_execution WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
                            [pending, list(TERMINAL)],
                        ).fetchall()
                        ended([row[0] for row in rows], announced=False)

        def client(n: int) -> None:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
            while time.monotonic() < deadline and not failures:
                started = time.monotonic()
                body = json.dumps({"input": {"run": next(run_numbers)}}).encode()
                key = secrets.token_hex(16)
                for attempt in range(3):  # gunicorn may close an idle keep-alive connection; the key makes it safe
                    try:
                        auth = f"Bearer {self.bearer()}"
                        connection.request(
                            "POST", path, body, {**headers, "Authorization": auth, "Idempotency-Key": key}
                        )
                        response = connection.getresponse()
                        answer = response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        connection.close()  # the next request connects again
                        if attempt == 2:
                            raise
                accepted = time.monotonic()
                if response.status != 202:
                    failures.append(f"execute answered {response.status}: {answer[:300]!r}")
                    return
                execution_id = json.loads(answer)["id"]
                event = threading.Event()
                with lock:
                    if execution_id in ended_unclaimed:
                        ended_unclaimed.discard(execution_id)
                        event.set()
                    else:
                        waiting[execution_id] = event
                if not event.wait(timeout=120):
                    failures.append(f"execution {execution_id} did not finish within 120 s")
                    return
                done = time.monotonic()
                if not window[0] <= done < window[1]:
                    continue
                with lock:
                    finished_ids.append(execution_id)
                    result.api_ms.append((accepted - started) * 1000)
                    result.e2e_ms.append((done - started) * 1000)

        def run_clients() -> None:
            listening.set()
            subscribed = threading.Event()
            # Daemon threads, all of them: a bench stopped by Ctrl-C or SIGTERM stops its services in its
            # `finally` and exits, instead of waiting for clients and watchers that nobody will stop.
            watchers = [
                threading.Thread(target=listener, args=(subscribed,), daemon=True),
                threading.Thread(target=poller, daemon=True),
            ]
            for watcher in watchers:
                watcher.start()
            subscribed.wait(timeout=10)
            threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
            for thread in threads:
                thread.start()
            measure_window()
            for thread in threads:
                thread.join()
            listening.clear()
            for watcher in watchers:
                watcher.join()
            if failures:
                raise SystemExit(failures[0])

        def count_outcomes() -> None:
            with psycopg.connect(self.database_url, autocommit=True, application_name="bench-read") as db:
                (succeeded,) = db.execute(
                    "SELECT count(*) FROM executions_execution WHERE id = ANY(%s::uuid[]) AND status = 'succeeded'",
                    [finished_ids],
                ).fetchone()
            result.finished = len(finished_ids)
            result.succeeded = succeeded

        def measure_window() -> None:
            """The clients run through the warm-up, the window and a drain; only the window is measured, while
            every client is busy. Counting from their start to their last completion instead would count
            their ramp-up and drain as well, which costs long executions (S4) about 6 % of their rate."""
            nonlocal deadline
            time.sleep(self.args.warmup)
            before = self.snapshot()
            threads_before = {group: scheduling(list(before[group])) for group in SERVICE}
            window_over = threading.Event()
            sampler = threading.Thread(
                target=sample_pg_waits, args=(self.database_url, self.args.database, result, window_over), daemon=True
            )
            if self.args.pg_waits:
                sampler.start()
            client_cpu = time.process_time()
            window[0] = time.monotonic()
            time.sleep(self.args.duration)
            window_over.set()
            if self.args.pg_waits:
                sampler.join()
            after = self.snapshot()
            threads_after = {group: scheduling(list(after[group])) for group in SERVICE}
            window[1] = time.monotonic()
            deadline = window[1]  # the clients stop starting executions and drain, unmeasured
            result.elapsed = window[1] - window[0]
            result.cpu = {group: cpu_delta(before[group], after[group]) for group in before}
            result.cpu["client"] = time.process_time() - client_cpu
            for group in SERVICE:
                result.runqueue_ms[group], result.slices[group] = scheduling_delta(
                    threads_before[group], threads_after[group]
                )
            result.rss = {group: rss_mb(after[group]) for group in SERVICE}
            result.worker_rss_growth_mb = rss_mb(after["worker"]) - rss_mb(before["worker"])

        run_clients()
        count_outcomes()
        return result

    def summary(self, result: Result, load_before: tuple) -> dict:
        a = self.args
        scenario = SCENARIOS[result.scenario]
        return {
            "scenario": result.scenario,
            "steps": a.steps or scenario.steps,
            "clients": a.clients or scenario.clients,
            "target_delay_ms": None if a.target_url else scenario.delay_ms,
            "exec_per_s": round(result.succeeded / result.elapsed, 1) if result.elapsed else 0.0,
            "finished": result.finished,
            "succeeded": result.succeeded,
            "p50_ms": round(percentile(result.e2e_ms, 0.5), 1),
            "p95_ms": round(percentile(result.e2e_ms, 0.95), 1),
            "execute_p50_ms": round(percentile(result.api_ms, 0.5), 1),
            "execute_p95_ms": round(percentile(result.api_ms, 0.95), 1),
            "cpu_ms_per_exec": round(result.per_exec(*SERVICE), 2),
            "cpu_ms_by_class": {g: round(result.per_exec(g), 2) for g in (*SERVICE, "target", "client")},
            "runqueue_ms_per_exec_by_class": {
                g: round(result.runqueue_ms[g] / result.finished, 2) if result.finished else None for g in SERVICE
            },
            "slices_per_exec_by_class": {
                g: round(result.slices[g] / result.finished, 1) if result.finished else None for g in SERVICE
            },
            "rss_mb": round(sum(result.rss.values()), 1),
            "rss_mb_by_class": {g: round(v, 1) for g, v in result.rss.items()},
            "worker_rss_mb": round(result.rss["worker"], 1),
            "worker_rss_growth_mb": round(result.worker_rss_growth_mb, 1),
            "web_start_s": round(self.web_start_s, 2),
            "worker_start_s": round(self.worker_start_s, 2),
            "web": " ".join([*WEB_COMMAND, *shlex.split(a.web_args)]),
            "worker": self.worker_description(),
            "duration_s": round(result.elapsed, 1),
            "cpus": os.cpu_count(),
            "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            **self.pg_wait_summary(result),
        }

    def pg_wait_summary(self, result: Result) -> dict:
        """`--pg-waits`: mean backends per wait event and, waiting for a lock, per statement."""
        if not result.pg_samples:
            return {}

        def means(counts: dict[str, int]) -> dict[str, float]:
            ranked = sorted(counts.items(), key=lambda item: -item[1])
            return {name: round(count / result.pg_samples, 3) for name, count in ranked}

        return {
            "pg_waiting_by_event": means(result.pg_waits),
            "pg_lock_waits_by_statement": means(result.pg_lock_waits),
        }

    def worker_description(self) -> str:
        a = self.args
        command = " ".join([*(f"{k}={v}" for k, v in WORKER_ENVIRONMENT.items()), *WORKER_COMMAND])
        if a.pool:
            command = f"CELERY_WORKER_POOL={a.pool} {command}"
        if a.concurrency:
            command += f" --concurrency={a.concurrency}"
        extra = f" {a.worker_args}" if a.worker_args else ""
        return f"{a.workers} x ({command}{extra})"

    # --- in-process: queries and profile ---

    def queries_and_profile(self, target: str) -> str:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from executions import services
        from executions.runtime import process_execution

        lines = []
        client = Client(HTTP_AUTHORIZATION=f"Bearer {self.token}", HTTP_X_WORKSPACE_ID=str(self.workspace.id))
        connectors = {steps: self.connector(target, steps) for steps in (1, 5)}
        for steps, connector in connectors.items():
            url = f"/api/v1/connectors/{connector.id}/execute"
            client.post(url, {"input": {"run": 0}}, content_type="application/json")
            with CaptureQueriesContext(connection) as api_queries:
                response = client.post(url, {"input": {"run": 1}}, content_type="application/json")
            process_execution(services.execution_create(connector=connector, input={"run": 2}, enqueue=False).id)
            execution = services.execution_create(connector=connector, input={"run": 3}, enqueue=False)
            with CaptureQueriesContext(connection) as run_queries:
                process_execution(execution.id, reload=False)
            lines.append(
                f"{steps} step(s): execute API {len(api_queries)} queries (HTTP {response.status_code}); "
                f"a worker's run {len(run_queries)} queries"
            )
            if self.args.show_queries:
                lines += [f"    api: {q['sql'][:160]}" for q in api_queries.captured_queries]
                lines += [f"    run: {q['sql'][:160]}" for q in run_queries.captured_queries]
        ids = [
            services.execution_create(connector=connectors[5], input={"run": i}, enqueue=False).id
            for i in range(self.args.profile_runs)
        ]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for execution_id in ids:
            process_execution(execution_id, reload=False)
        profiler.disable()
        elapsed = time.perf_counter() - started
        lines.append(
            f"cProfile: {self.args.profile_runs} runs of the 5-step connector in-process, "
            f"{1000 * elapsed / self.args.profile_runs:.1f} ms wall per execution (profiler overhead included)"
        )
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        lines.append(out.getvalue())
        return "\n".join(lines)

    # --- orchestration ---

    def run(self) -> list[dict]:
        self.prepare_database()
        self.setup_django()
        self.create_fixtures()
        if self.args.profile_only:
            print(self.queries_and_profile(self.args.target_url or self.start_target(0)))
            return []
        self.flush_redis()
        base = self.start_web()
        self.start_workers()
        summaries = []
        for name in self.args.scenarios:
            load_before = os.getloadavg()
            target = self.args.target_url.rstrip("/") if self.args.target_url else None
            target = target or self.start_target(SCENARIOS[name].delay_ms)
            print(f"running {name} for {self.args.duration:g} s ...", file=sys.stderr, flush=True)
            summaries.append(self.summary(self.run_scenario(name, base, target), load_before))
            self.empty_tables()
        return summaries

    def close(self) -> None:
        for process in [*reversed(self.processes), self.target_process]:
            if process is not None:
                stop(process)


# A table's column: its title, the summary's key (or a key and a key within it) and the format of a cell.
Column = tuple[str, str | tuple[str, str], str]
LEADING_COLUMNS: list[Column] = [
    ("scenario", "scenario", "{}"),
    ("exec/s", "exec_per_s", "{:.1f}"),
    ("p50 ms", "p50_ms", "{:.0f}"),
    ("p95 ms", "p95_ms", "{:.0f}"),
]


def markdown_table(summaries: list[dict], columns: list[Column]) -> list[str]:
    """The lines of a markdown table with one row per summary (bench_n8n.py prints its own with it)."""

    def cell(summary: dict, key: str | tuple[str, str], form: str) -> str:
        value = summary[key[0]][key[1]] if isinstance(key, tuple) else summary[key]
        return form.format(value)

    rows = [[title for title, _key, _form in columns]]
    rows += [[cell(s, key, form) for _title, key, form in columns] for s in summaries]
    out = ["| " + " | ".join(row) + " |" for row in rows]
    out.insert(1, "|" + "---|" * len(columns))
    return out


def table(summaries: list[dict]) -> str:
    columns: list[Column] = [
        *LEADING_COLUMNS,
        ("execute p95 ms", "execute_p95_ms", "{:.1f}"),
        ("CPU ms/exec", "cpu_ms_per_exec", "{:.1f}"),
        ("web", ("cpu_ms_by_class", "web"), "{:.1f}"),
        ("worker", ("cpu_ms_by_class", "worker"), "{:.1f}"),
        ("pg", ("cpu_ms_by_class", "postgres"), "{:.1f}"),
        ("redis", ("cpu_ms_by_class", "redis"), "{:.1f}"),
        ("RSS MB", "rss_mb", "{:.0f}"),
        ("worker RSS MB", "worker_rss_mb", "{:.0f}"),
        ("load before", "load_before", "{0[0]:.1f}"),
    ]
    first = summaries[0]
    set_up = f"web: {first['web']}; worker: {first['worker']}; {first['cpus']} CPUs"
    return "\n".join([*markdown_table(summaries, columns), "", set_up])


def stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends the bench through its `finally`, which stops the services it started."""
    raise SystemExit(128 + signum)


def add_scenario_arguments(parser: argparse.ArgumentParser, *, duration: float, warmup: float) -> Any:
    """--scenario or --all (returned: the group of such choices), --duration, --warmup and --json, as this bench
    and bench_n8n.py take them."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--scenario", choices=sorted(SCENARIOS), help="run one scenario")
    which.add_argument("--all", action="store_true", help="run S1 to S4 and print the table")
    parser.add_argument("--duration", type=float, default=duration, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, default=warmup, help="seconds of load before the window")
    parser.add_argument("--json", action="store_true", help="print one JSON object (a list with --all) last")
    return which


def print_summaries(args: argparse.Namespace, summaries: list[dict], render: Callable[[list[dict]], str]) -> None:
    """`render`'s table (with --all, or without --json), then with --json one object (a list with --all) last."""
    if args.all or not args.json:
        print(render(summaries))
    if args.json:
        print(json.dumps(summaries if args.all else summaries[0]))


def argument_parser() -> argparse.ArgumentParser:
    """The command line; bench_floor.py takes its defaults for the processes it starts the same way."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = add_scenario_arguments(parser, duration=30.0, warmup=5.0)
    which.add_argument("--profile-only", action="store_true", help="queries per execution and a cProfile")
    parser.add_argument("--target-url", help="use this target instead of the bench's own")
    parser.add_argument("--steps", type=int, help="override the scenario's steps")
    parser.add_argument("--clients", type=int, help="override the scenario's closed-loop clients")
    parser.add_argument("--pool", help="a Celery pool name instead of README's pool (prefork, threads, ...)")
    parser.add_argument("--concurrency", type=int, help="the worker's --concurrency instead of README's")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (README: one; more at 0.7 of a core, tens in flight)"
    )
    parser.add_argument("--worker-args", default="", help="more arguments for `celery worker`")
    parser.add_argument("--web-args", default="", help="more arguments for gunicorn (later ones win)")
    parser.add_argument("--database", default="connectors_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--profile-runs", type=int, default=100)
    parser.add_argument("--show-queries", action="store_true", help="print the SQL counted per execution")
    parser.add_argument(
        "--pg-waits", action="store_true", help="sample what PostgreSQL's backends wait for (a query every 10 ms)"
    )
    parser.add_argument("--log-dir", default=str(ROOT / ".local" / "bench"))
    parser.add_argument("--serve-target", nargs=2, type=float, metavar=("PORT", "DELAY_MS"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    if args.serve_target:
        serve_target(int(args.serve_target[0]), args.serve_target[1])
        return
    if not (args.scenario or args.all or args.profile_only):
        parser.error("choose --scenario S1|S2|S3|S4, --all or --profile-only")
    args.scenarios = sorted(SCENARIOS) if args.all else [args.scenario]
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    bench = Bench(args)
    try:
        summaries = bench.run()
    finally:
        bench.close()
    if summaries:
        print_summaries(args, summaries, table)


if __name__ == "__main__":
    main()
