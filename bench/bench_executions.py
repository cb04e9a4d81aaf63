"""Execution throughput, engine cost per step, CPU per execution and execute-API latency, end to end.

Run by hand (never part of the test suite); everything it talks to is on 127.0.0.1:

    .venv/bin/python bench/bench_executions.py                  # both Celery pools, 25 s per scenario
    .venv/bin/python bench/bench_executions.py --pool threads --duration 10
    .venv/bin/python bench/bench_executions.py --profile-only   # queries per execution and a cProfile

What it starts, as child processes: a fast local JSON target (a threaded http.server with keep-alive),
gunicorn serving config.wsgi, and a Celery worker (prefork, threads or gevent pool; `--worker-args` adds
options). It uses the local PostgreSQL (database `connectors_bench`, created and migrated if missing, its
execution tables emptied) and Redis (db 14 by default, flushed).

What it measures, per pool and per connector (1 step, 5 steps), with N closed-loop clients (each one POSTs
/execute, then waits for that execution to finish, seen by one poller thread that reads all the awaited
statuses in one query every 2 ms, then starts the next):

* completed executions per second (only `succeeded` ones count);
* execute API latency (p50/p95) and end-to-end latency (p50/p95);
* CPU ms per execution of the service's processes (gunicorn and Celery trees, their PostgreSQL backends,
  Redis) and, apart, of the target and of the clients (this process, poller included);
* engine cost per step: the 5-step minus the 1-step figures, divided by 4, next to a bare `requests` loop to
  the same target.

Then, in this process: queries per execute call and per execution, and a cProfile of `process_execution`.
CPU comes from /proc (Linux only). The machine's other load (other test runs) shows in the figures: the report
prints the load average before and after; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import io
import json
import os
import pstats
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 0.002


# ------------------------------------------------------------------------------------------------------------
# The target: a minimal keep-alive JSON server (also run as `bench_executions.py --serve-target PORT`)

TARGET_BODY = json.dumps({"ok": True, "id": 42, "name": "bench", "items": [{"id": 1}, {"id": 2}]}).encode()


class _TargetHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle plus the client's delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TARGET_BODY)))
        self.end_headers()
        self.wfile.write(TARGET_BODY)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args) -> None:
        pass


def serve_target(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _TargetHandler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


# ------------------------------------------------------------------------------------------------------------
# CPU accounting from /proc


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, cpu seconds incl. reaped children) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / CLK_TCK


def _table() -> dict[int, tuple[int, float]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (entry := _stat(int(name))) is not None:
            table[int(name)] = entry
    return table


def tree_cpu(roots: list[int]) -> dict[int, float]:
    """CPU seconds of every process in the trees under `roots`."""
    table = _table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid][1]
            todo.extend(children.get(pid, ()))
    return found


def pids_cpu(pids: list[int]) -> dict[int, float]:
    return {pid: entry[1] for pid in pids if (entry := _stat(pid)) is not None}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


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
    os.killpg(process.pid, signal.SIGTERM)
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
        time.sleep(0.2)
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
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout}s")


# ------------------------------------------------------------------------------------------------------------
# Measurement


def run_threads(target, count: int) -> None:
    """Runs target(0) .. target(count - 1) in parallel threads and waits for all of them."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


@dataclass
class Result:
    label: str
    elapsed: float = 0.0
    succeeded: int = 0
    finished: int = 0
    api_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    run_ms: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.succeeded / self.elapsed if self.elapsed else 0.0

    def cpu_ms_per_execution(self, *groups: str) -> float:
        return 1000 * sum(self.cpu[g] for g in groups) / self.finished if self.finished else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.logs = Path(args.log_dir)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CI")},
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": args.redis_url,
            "CONNECTORS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
            "CONNECTORS_WORKSPACE_CONCURRENCY": "1000",
            "CONNECTORS_ENCRYPTION_KEYS": f"bench:{key}",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "API_THROTTLE_USER": "1000000/min",
            "API_THROTTLE_EXECUTE": "1000000/min",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # Backends must outlive a scenario: the CPU of one that exits (the default recycles connections every
            # 60 s) would drop out of the PostgreSQL column.
            "DATABASE_CONN_MAX_AGE": "600",
        }
        self.processes: list[subprocess.Popen] = []

    # --- set-up ---

    def prepare_database(self) -> None:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.args.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.args.database}"')
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        # Every run starts from empty execution tables: executions an earlier run left queued or running (its
        # worker was stopped mid-scenario) would otherwise weigh on every claim's running count, and grown
        # tables and indexes would make runs incomparable.
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE executions_executionstep, executions_execution, executions_connectordailystats CASCADE"
            )

    def setup_django(self) -> None:
        os.environ.update(self.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def create_fixtures(self, target: str) -> None:
        from rest_framework_simplejwt.tokens import RefreshToken

        from connectors.services import connector_create
        from connectors.validation import DefinitionSerializer
        from workspaces.models import User
        from workspaces.services import workspace_create

        email = f"bench-{secrets.token_hex(4)}@bench.test"
        user = User.objects.create_user(email=email, password=secrets.token_urlsafe(16))
        self.workspace = workspace_create(name="Bench", owner=user)
        self.token = str(RefreshToken.for_user(user).access_token)

        def connector(steps: int):
            chain = [
                {
                    "name": f"s{i}",
                    "method": "POST" if i % 2 else "GET",
                    "url": f"{target}/step/{i}",
                    "query": {"q": "{{input.q}}"},
                    "headers": {"X-Trace": "{{input.q | upper}}"},
                    **({"body_type": "json", "body": {"n": "{{input.n}}", "q": "{{input.q}}"}} if i % 2 else {}),
                    "extract": {"id": "id", "last": "items[-1].id"},
                }
                for i in range(steps)
            ]
            serializer = DefinitionSerializer(data={"steps": chain})
            serializer.is_valid(raise_exception=True)
            return connector_create(
                workspace=self.workspace, data={"name": f"bench {steps} step(s)", **serializer.validated_data}
            )

        self.connectors = {1: connector(1), 5: connector(5)}

    # --- processes ---

    def start_target(self) -> str:
        port = free_port()
        log = self.logs / "target.log"
        self.target = start([PY, __file__, "--serve-target", str(port)], self.env, log)
        self.processes.append(self.target)
        wait_for_log(log, "ready", self.target)
        return f"http://127.0.0.1:{port}"

    def start_web(self) -> str:
        port = free_port()
        log = self.logs / "gunicorn.log"
        command = [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.args.web_workers),
            "--threads",
            str(self.args.web_threads),
            "--log-level",
            "warning",
        ]
        self.web = start(command, self.env, log)
        self.processes.append(self.web)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", self.web, log)
        return f"http://127.0.0.1:{port}"

    def start_worker(self, pool: str) -> subprocess.Popen:
        log = self.logs / f"celery-{pool}.log"
        command = [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            f"--pool={pool}",
            f"--concurrency={self.args.concurrency}",
            "-Q",
            "celery",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=bench-{pool}-{secrets.token_hex(3)}@%h",
            *shlex.split(self.args.worker_args),
        ]
        worker = start(command, self.env, log)
        wait_for_log(log, " ready.", worker)
        return worker

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.args.redis_url).flushdb()

    def redis_pid(self) -> int | None:
        import redis

        with contextlib.suppress(redis.RedisError):
            return int(redis.Redis.from_url(self.args.redis_url).info("server")["process_id"])
        return None

    def backend_pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name NOT LIKE 'bench-%%'",
                [self.args.database],
            ).fetchall()
        return [row[0] for row in rows]

    def snapshot(self, worker: subprocess.Popen) -> dict[str, dict[int, float]]:
        redis_pid = self.redis_pid()
        return {
            "web": tree_cpu([self.web.pid]),
            "worker": tree_cpu([worker.pid]),
            "postgres": pids_cpu(self.backend_pids()),
            "redis": pids_cpu([redis_pid] if redis_pid else []),
            "target": tree_cpu([self.target.pid]),
        }

    # --- scenarios ---

    def run_clients(self, base: str, steps: int, duration: float, worker: subprocess.Popen, label: str) -> Result:
        import psycopg
        import requests

        connector = self.connectors[steps]
        url = f"{base}/api/v1/connectors/{connector.id}/execute"
        headers = {"Authorization": f"Bearer {self.token}", "X-Workspace-ID": str(self.workspace.id)}
        result = Result(label)
        lock = threading.Lock()
        ids: list[str] = []
        deadline = 0.0

        def submit(session: requests.Session, body: dict) -> requests.Response:
            # gunicorn closes idle keep-alive connections; the Idempotency-Key makes resending safe.
            key = {"Idempotency-Key": secrets.token_hex(16)}
            for attempt in range(3):
                try:
                    return session.post(url, json=body, headers={**headers, **key}, timeout=30)
                except requests.ConnectionError:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        waiting: dict[str, tuple[threading.Event, list[str]]] = {}
        polling = threading.Event()

        def poller() -> None:
            # One query every POLL_SECONDS for all the executions the clients wait for (not one poll loop per
            # client: at 8 clients x 3 ms that was ~2,600 queries/s competing with the service for the CPUs).
            with psycopg.connect(self.database_url, autocommit=True, application_name="bench-poll") as db:
                while polling.is_set():
                    with lock:
                        pending = list(waiting)
                    if pending:
                        rows = db.execute(
                            "SELECT id::text, status FROM executions_execution WHERE id = ANY(%s::uuid[])"
                            " AND status = ANY(%s)",
                            [pending, list(TERMINAL)],
                        ).fetchall()
                        with lock:
                            for execution_id, status in rows:
                                event, outcome = waiting.pop(execution_id)
                                outcome.append(status)
                                event.set()
                    time.sleep(POLL_SECONDS)

        def client(n: int) -> None:
            session = requests.Session()
            i = 0
            while time.monotonic() < deadline:
                i += 1
                started = time.monotonic()
                response = submit(session, {"input": {"q": f"c{n}-{i}", "n": i}})
                accepted = time.monotonic()
                if response.status_code != 202:
                    raise SystemExit(f"execute answered {response.status_code}: {response.text[:300]}")
                execution_id = response.json()["id"]
                event, outcome = threading.Event(), []
                with lock:
                    waiting[execution_id] = (event, outcome)
                if not event.wait(timeout=60):
                    raise SystemExit(f"execution {execution_id} did not finish within 60 s")
                done = time.monotonic()
                with lock:
                    ids.append(execution_id)
                    result.finished += 1
                    result.succeeded += outcome[0] == "succeeded"
                    result.api_ms.append((accepted - started) * 1000)
                    result.e2e_ms.append((done - started) * 1000)

        def clients() -> None:
            polling.set()
            watcher = threading.Thread(target=poller, daemon=True)
            watcher.start()
            try:
                run_threads(client, self.args.clients)
            finally:
                polling.clear()
                watcher.join()

        # Warm-up: connections, imports and caches in every process; then measure afresh.
        deadline = time.monotonic() + self.args.warmup
        clients()
        result = Result(label)
        ids.clear()

        before = self.snapshot(worker)
        client_cpu = time.process_time()
        started = time.monotonic()
        deadline = started + duration
        clients()
        result.elapsed = time.monotonic() - started
        after = self.snapshot(worker)
        result.cpu = {group: cpu_delta(before[group], after[group]) for group in before}
        result.cpu["client"] = time.process_time() - client_cpu
        result.step_ms, result.run_ms = self.durations(ids)
        return result

    def durations(self, ids: list[str]) -> tuple[list[float], list[float]]:
        """Recorded step durations, and run durations (claim to finish: no queueing) of these executions."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, application_name="bench-read") as db:
            steps = db.execute(
                "SELECT duration_ms FROM executions_executionstep WHERE execution_id = ANY(%s::uuid[])", [ids]
            ).fetchall()
            runs = db.execute(
                "SELECT duration_ms FROM executions_execution WHERE id = ANY(%s::uuid[])", [ids]
            ).fetchall()
        return [float(r[0]) for r in steps if r[0] is not None], [float(r[0]) for r in runs if r[0] is not None]

    def bare_requests(self, target: str, duration: float) -> Result:
        import requests

        result = Result("bare requests")
        lock = threading.Lock()
        deadline = time.monotonic() + duration

        def client(n: int) -> None:
            session = requests.Session()
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = session.get(f"{target}/step/0", params={"q": f"c{n}"}, headers={"X-Trace": "C"})
                response.json()
                with lock:
                    result.finished += 1
                    result.succeeded += response.status_code == 200
                    result.e2e_ms.append((time.monotonic() - started) * 1000)

        before_self = time.process_time()
        before_target = tree_cpu([self.target.pid])
        started = time.monotonic()
        run_threads(client, self.args.clients)
        result.elapsed = time.monotonic() - started
        result.cpu = {
            "client": time.process_time() - before_self,
            "target": cpu_delta(before_target, tree_cpu([self.target.pid])),
        }
        return result

    # --- in-process: queries and profile ---

    def queries_and_profile(self) -> str:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from executions import services
        from executions.runtime import process_execution

        lines = []
        client = Client(HTTP_AUTHORIZATION=f"Bearer {self.token}", HTTP_X_WORKSPACE_ID=str(self.workspace.id))
        for steps, connector in self.connectors.items():
            url = f"/api/v1/connectors/{connector.id}/execute"
            client.post(url, {"input": {"q": "warm", "n": 0}}, content_type="application/json")
            with CaptureQueriesContext(connection) as api_queries:
                response = client.post(url, {"input": {"q": "x", "n": 1}}, content_type="application/json")
            execution = services.execution_create(connector=connector, input={"q": "x", "n": 1}, enqueue=False)
            process_execution(execution.id)  # warm
            execution = services.execution_create(connector=connector, input={"q": "y", "n": 2}, enqueue=False)
            with CaptureQueriesContext(connection) as run_queries:
                process_execution(execution.id, reload=False)  # as the Celery task runs it
            lines.append(
                f"{steps} step(s): execute API {len(api_queries)} queries (HTTP {response.status_code}, no "
                f"Idempotency-Key); process_execution {len(run_queries)} queries"
            )
            if self.args.show_queries:
                lines += [f"    api: {q['sql'][:150]}" for q in api_queries.captured_queries]
                lines += [f"    run: {q['sql'][:150]}" for q in run_queries.captured_queries]
        lines += self.unloaded_step_cost()
        connector = self.connectors[5]
        ids = [
            services.execution_create(connector=connector, input={"q": f"p{i}", "n": i}, enqueue=False).id
            for i in range(self.args.profile_runs)
        ]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for execution_id in ids:
            process_execution(execution_id)
        profiler.disable()
        elapsed = time.perf_counter() - started
        lines.append(
            f"cProfile: {self.args.profile_runs} runs of the 5-step connector in-process, "
            f"{1000 * elapsed / self.args.profile_runs:.1f} ms wall per execution (profiler overhead included)"
        )
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(28)
        lines.append(out.getvalue())
        return "\n".join(lines)

    def unloaded_step_cost(self, runs: int = 200) -> list[str]:
        """The engine's cost per step without contention: runs one after another in this process (no broker,
        no web), 5-step minus 1-step over 4, next to the same requests sent by a bare `requests` loop."""
        import requests

        from executions import services
        from executions.runtime import process_execution

        timings = {}
        for steps, connector in self.connectors.items():
            ids = [
                services.execution_create(connector=connector, input={"q": f"u{i}", "n": i}, enqueue=False).id
                for i in range(runs)
            ]
            wall, cpu = time.perf_counter(), time.process_time()
            for execution_id in ids:
                process_execution(execution_id, reload=False)
            timings[steps] = (
                1000 * (time.perf_counter() - wall) / runs,
                1000 * (time.process_time() - cpu) / runs,
            )
        session = requests.Session()
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(runs):
            session.get(f"{self.target_url}/step/0", params={"q": f"u{i}"}, headers={"X-Trace": "U"}).json()
        bare = (1000 * (time.perf_counter() - wall) / runs, 1000 * (time.process_time() - cpu) / runs)
        per_step = [(timings[5][k] - timings[1][k]) / 4 for k in (0, 1)]
        return [
            f"unloaded, in-process, one run at a time: 1-step {timings[1][0]:.2f} ms wall / {timings[1][1]:.2f} ms "
            f"CPU, 5-step {timings[5][0]:.2f} ms / {timings[5][1]:.2f} ms per execution",
            f"  per extra step {per_step[0]:.2f} ms wall / {per_step[1]:.2f} ms CPU; a bare request "
            f"{bare[0]:.2f} ms / {bare[1]:.2f} ms; engine cost per step {per_step[0] - bare[0]:.2f} ms wall, "
            f"{per_step[1] - bare[1]:.2f} ms CPU",
        ]

    # --- orchestration ---

    def run(self) -> None:
        self.load_before = os.getloadavg()
        self.prepare_database()
        self.setup_django()
        target = self.start_target()
        self.target_url = target
        self.create_fixtures(target)
        if self.args.profile_only:
            print(self.queries_and_profile())
            return
        self.flush_redis()
        base = self.start_web()
        pools = ["prefork", "threads"] if self.args.pool == "both" else [self.args.pool]
        results: list[Result] = []
        for pool in pools:
            worker = self.start_worker(pool)
            try:
                for steps in (1, 5):
                    label = f"{pool} {steps}-step"
                    print(f"running {label} for {self.args.duration:g}s ...", flush=True)
                    results.append(self.run_clients(base, steps, self.args.duration, worker, label))
            finally:
                stop(worker)
                self.flush_redis()
        bare = self.bare_requests(target, min(self.args.duration, 10))
        print(self.report(results, bare, pools))
        if not self.args.no_profile:
            print(self.queries_and_profile())

    def report(self, results: list[Result], bare: Result, pools: list[str]) -> str:
        a = self.args
        out = [
            "",
            f"{a.clients} closed-loop clients; gunicorn {a.web_workers}x{a.web_threads} threads; Celery concurrency "
            f"{a.concurrency} {a.worker_args}; {os.cpu_count()} CPUs; {a.duration:g}s per scenario after "
            f"{a.warmup:g}s warm-up; load average before the run {self.load_before}, after {os.getloadavg()}",
            "",
            f"{'scenario':<18}{'exec/s':>8}{'ok':>7}{'api p50':>9}{'api p95':>9}{'e2e p50':>9}{'e2e p95':>9}"
            f"{'run p50':>9}{'step avg':>10}{'svc CPU':>9}{'web':>7}{'worker':>8}{'pg':>7}{'redis':>7}{'target':>8}"
            f"{'client':>8}",
            f"{'':<18}{'':>8}{'':>7}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>9}{'ms':>10}{'ms/exec':>9}"
            f"{'ms':>7}{'ms':>8}{'ms':>7}{'ms':>7}{'ms':>8}{'ms':>8}",
        ]
        for r in results:
            per = {g: r.cpu_ms_per_execution(g) for g in r.cpu}
            out.append(
                f"{r.label:<18}{r.rate:>8.1f}{r.succeeded:>7}{percentile(r.api_ms, 0.5):>9.1f}"
                f"{percentile(r.api_ms, 0.95):>9.1f}{percentile(r.e2e_ms, 0.5):>9.1f}{percentile(r.e2e_ms, 0.95):>9.1f}"
                f"{percentile(r.run_ms, 0.5):>9.1f}"
                f"{statistics.fmean(r.step_ms) if r.step_ms else float('nan'):>10.2f}"
                f"{r.cpu_ms_per_execution('web', 'worker', 'postgres', 'redis'):>9.1f}"
                f"{per['web']:>7.1f}{per['worker']:>8.1f}{per['postgres']:>7.1f}{per['redis']:>7.1f}{per['target']:>8.2f}"
                f"{per['client']:>8.2f}"
            )
        bare_ms = statistics.fmean(bare.e2e_ms)
        out += [
            "",
            f"bare requests loop: {bare.rate:.0f} req/s, {bare_ms:.2f} ms per request, "
            f"{1000 * bare.cpu['client'] / bare.finished:.2f} ms client CPU and "
            f"{1000 * bare.cpu['target'] / bare.finished:.2f} ms target CPU per request",
            "",
            "engine cost per extra step ((5-step - 1-step) / 4; run time = median claim-to-finish):",
        ]
        for pool in pools:
            one = next(r for r in results if r.label == f"{pool} 1-step")
            five = next(r for r in results if r.label == f"{pool} 5-step")
            wall = (statistics.median(five.run_ms) - statistics.median(one.run_ms)) / 4
            groups = ("web", "worker", "postgres", "redis")
            cpu = (five.cpu_ms_per_execution(*groups) - one.cpu_ms_per_execution(*groups)) / 4
            worker_cpu = (five.cpu_ms_per_execution("worker") - one.cpu_ms_per_execution("worker")) / 4
            out.append(
                f"  {pool:<8} {wall:6.2f} ms run time per step (bare request {bare_ms:.2f} ms); "
                f"{cpu:6.2f} ms service CPU per step, of which worker {worker_cpu:.2f} ms (bare request client CPU "
                f"{1000 * bare.cpu['client'] / bare.finished:.2f} ms)"
            )
        return "\n".join(out)

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pool",
        choices=["prefork", "threads", "gevent", "both"],
        default="both",
        help="Celery pool ('both': prefork, then threads; gevent needs the gevent package)",
    )
    parser.add_argument("--duration", type=float, default=25.0, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="Celery worker concurrency")
    parser.add_argument(
        "--worker-args", default="", help="more arguments for `celery worker`, e.g. '-O fair --prefetch-multiplier 2'"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--database", default="connectors_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--profile-runs", type=int, default=100)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--show-queries", action="store_true", help="print the SQL counted per execution")
    parser.add_argument("--log-dir", default=str(ROOT / ".local" / "bench"))
    parser.add_argument("--serve-target", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_target:
        serve_target(args.serve_target)
        return
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
