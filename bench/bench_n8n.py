"""n8n 2.8.4 in bench_executions.py's four scenarios: the peer that the service's targets are ratios to.

Run by hand (never part of the test suite), on the machine and in the hour the service is measured;
everything it talks to is on 127.0.0.1:

    python bench/bench_n8n.py --n8n PATH/node_modules/n8n/bin/n8n --scenario S1|S2|S3|S4 [--duration S] --json
    python bench/bench_n8n.py --n8n PATH/node_modules/n8n/bin/n8n --all [--duration S]

The first prints one JSON object as its last line, with bench_executions.py's keys where they apply
(`exec_per_s`, `p50_ms`, `p95_ms`, `cpu_ms_per_exec`, `rss_mb`, ...); the second runs S1 to S4 one after another
and prints a table (and with `--json` a list of the four objects last). The scenarios, their targets, their
clients and the measured window are bench_executions.py's:

| scenario | target | steps | closed-loop clients |
|---|---|---|---|
| S1 | fast (answers at once) | 1 | 8 |
| S2 | fast | 5, each step's URL templated from the previous step's output | 8 |
| S3 | answers after 200 ms | 1 | 100 |
| S4 | answers after 200 ms | 5 | 100 |

It needs node on PATH; n8n 2.8.4, installed in a directory of its own, given by `--n8n` or `N8N_BIN` (the path
of its node_modules/n8n/bin/n8n); and the PostgreSQL server of `DATABASE_URL` (default
postgres://postgres@127.0.0.1:5432/...), in which n8n gets a database of its own (`--database`, default
`n8n_bench`, created if missing; n8n creates its tables).

What it starts, as child processes, and stops at the end (also on an error, Ctrl-C or SIGTERM):

* the two targets of bench_executions.py (`--serve-target`: an asyncio HTTP server with keep-alive answering
  `{"ok": true, "source": "stepi", "value": 42}`, at once and after 200 ms), on free ports;
* one n8n process (`n8n start`) with the configuration of `n8n_environment` below: regular execution mode (the
  webhook's execution runs in the process that received it), PostgreSQL, every execution saved (n8n's
  default), no telemetry, no task runner; its user folder in a temporary directory; listening on `--port`.

Before n8n starts, it writes one workflow per scenario (`workflow`): a webhook, POST /webhook/sN, answering
when its last node has finished (responseMode lastNode) with that node's JSON, then the scenario's HTTP
Request nodes: step 1 is `GET TARGET/step1?run=1`, step i `GET TARGET/stepi?prev={{ $json.value }}` (the
previous node's `value`). `n8n import:workflow` imports them and `n8n publish:workflow` publishes each; n8n
activates the published workflows when it starts, after its /healthz/readiness answers: the bench waits until
each webhook answers with its last node's JSON. Logs: .local/bench/n8n.log, n8n-cli.log (the imports) and
n8n-target-*.log.

Each scenario starts from empty n8n execution tables (as bench_executions.py empties the service's: n8n slows
as its history grows). Each client POSTs the scenario's webhook over a keep-alive connection of its own, waits
for the answer (the execution has then finished) and sends the next at once. The clients run without a pause
through the warm-up (`--warmup` seconds) and the measured window (`--duration`); only answers read in the
window count:

* `exec_per_s`: answers with the last node's JSON read in the window, per second (`succeeded` their number);
  `p50_ms`/`p95_ms`: their latency, POST sent to answer read, as bench_executions.py's end to end;
* `errors`: answers in the window that were not a 200 with the last node's JSON, and failed connections,
  never counted as executions; `errors_by_kind` says which (`http:404`, `body`, `exc:TimeoutError`);
* `cpu_ms_per_exec`: CPU of n8n's process tree and its PostgreSQL backends in the window (from /proc, as
  bench_executions.py reads it) per execution counted; `cpu_ms_by_class` splits it (`n8n`, `postgres`) and
  gives the target and the clients (this process) apart, not part of `cpu_ms_per_exec`;
* `rss_mb`: resident memory of n8n's process tree at the window's end; `rss_mb_by_class` adds its PostgreSQL
  backends by PSS (most of their RSS is the shared buffer pool);
* `n8n_start_s`: n8n's spawn to its first 200 from /healthz/readiness (the workflows imported before);
  `n8n_processes`: its process tree at the window's end (1: no task runner started);
  `db_executions_by_status`: the executions n8n saved in the scenario (warm-up and drain included);
* `load_before` / `load_after`: the machine's load average; other work on the machine shows in the wall-clock
  figures (not much in CPU per execution): check `uptime` first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, urlsplit, urlunsplit

import bench_executions as bench_module
import psycopg

N8N_VERSION = "2.8.4"
INSTALL_HINT = f"""Install n8n {N8N_VERSION} in a directory of its own:

    mkdir n8n-{N8N_VERSION} && cd n8n-{N8N_VERSION} && npm install n8n@{N8N_VERSION}

Where the CDN of n8n's `xlsx` dependency (cdn.sheetjs.com) is unreachable, write this package.json there first,
then run `npm install`:

    {{"private": true, "dependencies": {{"n8n": "{N8N_VERSION}"}}, "overrides": {{"xlsx": "npm:xlsx@0.18.5"}}}}

and give the bench its node_modules/n8n/bin/n8n: --n8n PATH, or N8N_BIN=PATH."""
SCENARIOS = bench_module.SCENARIOS
LOG_DIR = bench_module.ROOT / ".local" / "bench"
N8N_LOG = LOG_DIR / "n8n.log"
CLI_LOG = LOG_DIR / "n8n-cli.log"
EXECUTION_TABLES = (
    "execution_entity",
    "execution_data",
    "execution_metadata",
    "execution_annotations",
    "execution_annotation_tags",
)
READY_TIMEOUT_S = 120
CLIENT_TIMEOUT_S = 120
REQUEST_HEADERS = {"Content-Type": "application/json", "Connection": "keep-alive"}
# How a keep-alive connection that the server closed while it was idle fails on its next request.
IDLE_CLOSED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)

Answer = tuple[float, float, str]  # (time.monotonic() when read, latency in ms, "ok" or the kind of error)


# ------------------------------------------------------------------------------------------------------------
# n8n: its installation, configuration and workflows


def n8n_version(n8n_bin: str | None) -> str:
    """The version in the package.json of the n8n whose bin/n8n is `n8n_bin`; exits saying how to install n8n
    when there is none."""
    if not n8n_bin:
        raise SystemExit(f"Where is n8n? No --n8n and no N8N_BIN.\n\n{INSTALL_HINT}")
    package = Path(n8n_bin).resolve().parents[1] / "package.json"
    try:
        return json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        raise SystemExit(f"No n8n at {n8n_bin} (no {package}).\n\n{INSTALL_HINT}") from None


def n8n_environment(server: SplitResult, database: str, port: int, user_folder: Path) -> dict[str, str]:
    """n8n's configuration: one process, executing webhooks itself, on PostgreSQL, nothing sent anywhere."""
    return {
        **os.environ,
        "NODE_ENV": "production",
        "N8N_USER_FOLDER": str(user_folder),
        # The database outlives the temporary user folder, where n8n would write a new key at every run.
        "N8N_ENCRYPTION_KEY": "bench-n8n-no-credentials",
        "DB_TYPE": "postgresdb",
        "DB_POSTGRESDB_HOST": server.hostname or "127.0.0.1",
        "DB_POSTGRESDB_PORT": str(server.port or 5432),
        "DB_POSTGRESDB_DATABASE": database,
        "DB_POSTGRESDB_USER": server.username or "postgres",
        "DB_POSTGRESDB_PASSWORD": server.password or "",
        "EXECUTIONS_MODE": "regular",
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "N8N_PORT": str(port),
        "N8N_PROTOCOL": "http",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_DYNAMIC_BANNERS_ENABLED": "false",
        "N8N_HIRING_BANNER_ENABLED": "false",
        "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
        "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        # 2.x always enables task runners (N8N_RUNNERS_ENABLED is gone); "internal" mode would spawn a JS
        # runner child process (+ try a Python one). "external" mode with a token starts only the broker
        # socket and spawns nothing: n8n stays one process. Only Code nodes would need a runner.
        "N8N_RUNNERS_MODE": "external",
        "N8N_RUNNERS_AUTH_TOKEN": "bench-peer-no-runner-attached",
        "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_RUNNERS_BROKER_PORT": str(bench_module.free_port()),  # no runner connects: any free port
    }


def workflow_id(scenario: str) -> str:
    return f"benchwf{scenario.lower()}0000000"[:16]  # n8n's ids are 16 characters


def workflow(scenario: str, target: str, steps: int) -> dict:
    """Scenario `scenario`'s workflow: POST /webhook/sN runs `steps` HTTP Request nodes one after another and
    answers with the last one's JSON when the execution has finished."""
    key = scenario.lower()

    def node_id(part: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{part}"))

    webhook = {
        "id": node_id("webhook"),
        "name": "Webhook",
        "type": "n8n-nodes-base.webhook",
        "typeVersion": 2.1,
        "position": [0, 0],
        "webhookId": node_id("webhookId"),
        "parameters": {"httpMethod": "POST", "path": key, "responseMode": "lastNode", "options": {}},
    }
    requests = [
        {
            "id": node_id(f"step{i}"),
            "name": f"step{i}",
            "type": "n8n-nodes-base.httpRequest",
            "typeVersion": 4.4,
            "position": [220 * i, 0],
            "parameters": {
                "method": "GET",
                "url": f"{target}/step1?run=1" if i == 1 else f"={target}/step{i}?prev={{{{ $json.value }}}}",
                "options": {"response": {"response": {"responseFormat": "json"}}},
            },
        }
        for i in range(1, steps + 1)
    ]
    nodes = [webhook, *requests]
    connections = {
        before["name"]: {"main": [[{"node": after["name"], "type": "main", "index": 0}]]}
        for before, after in itertools.pairwise(nodes)
    }
    return {
        "id": workflow_id(scenario),
        "name": f"bench {key}",
        "active": False,
        "nodes": nodes,
        "connections": connections,
        "settings": {"executionOrder": "v1"},
        "pinData": {},
    }


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def port_taken(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def ask(port: int, method: str, path: str) -> tuple[int, bytes] | None:
    """One request to 127.0.0.1:`port` on a connection of its own: (status, body), or None without an answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=REQUEST_HEADERS)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def is_ready(port: int) -> bool:
    answer = ask(port, "GET", "/healthz/readiness")
    return answer is not None and answer[0] == 200


def webhook_path(scenario: str) -> str:
    return f"/webhook/{scenario.lower()}"


def last_step(scenario: str) -> str:
    """The `source` of the answer to scenario `scenario`'s webhook: its last node's."""
    return f"step{SCENARIOS[scenario].steps}"


def webhook_works(port: int, scenario: str) -> bool:
    """Whether scenario `scenario`'s webhook runs its workflow: POSTed, answers with the last node's JSON."""
    answer = ask(port, "POST", webhook_path(scenario))
    return answer is not None and outcome(*answer, last_step(scenario)) == "ok"


# ------------------------------------------------------------------------------------------------------------
# The clients


def outcome(status: int, body: bytes, expected_source: str) -> str:
    """The kind of an answer: "ok" for a 200 carrying the last node's JSON, else the kind of error."""
    if status != 200:
        return f"http:{status}"
    with contextlib.suppress(ValueError):
        answer = json.loads(body)
        if isinstance(answer, dict) and answer.get("source") == expected_source and answer.get("value") == 42:
            return "ok"
    return "body"


def client(port: int, path: str, expected_source: str, stop: threading.Event, answers: list[Answer]) -> None:
    """One closed-loop client: POSTs `path` over a keep-alive connection of its own, reads the answer and sends
    the next request at once, until `stop` is set; appends every answer to `answers`."""
    connection: http.client.HTTPConnection | None = None
    while not stop.is_set():
        reused = connection is not None
        connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        sent = time.monotonic()
        try:
            connection.request("POST", path, body=b"{}", headers=REQUEST_HEADERS)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            connection = None
            if reused and isinstance(error, IDLE_CLOSED):
                continue  # n8n closed the connection while it was idle: send again on a new one
            failed = time.monotonic()
            answers.append((failed, (failed - sent) * 1000, f"exc:{type(error).__name__}"))
            time.sleep(0.05)
            continue
        read = time.monotonic()
        answers.append((read, (read - sent) * 1000, outcome(response.status, body, expected_source)))
        if response.will_close:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


# ------------------------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Result:
    scenario: str
    answers: list[Answer]  # those read in the window
    elapsed: float
    cpu: dict[str, float]  # CPU seconds in the window by class: n8n, postgres, target, client
    rss: dict[str, float]  # MB at the window's end: n8n (RSS), postgres (PSS)
    n8n_processes: int
    pg_backends: int
    saved: dict[str, int]  # n8n's saved executions by status
    load_before: tuple[float, float, float]

    @property
    def latencies(self) -> list[float]:
        return [latency for _read, latency, kind in self.answers if kind == "ok"]

    def per_exec(self, *classes: str) -> float:
        succeeded = len(self.latencies)
        return 1000 * sum(self.cpu[c] for c in classes) / succeeded if succeeded else float("nan")


class N8nBench:
    def __init__(self, args: argparse.Namespace, node: str, version: str) -> None:
        self.args = args
        self.n8n_command = [node, str(Path(args.n8n).resolve())]
        self.version = version
        server = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/connectors")
        self.database_url = urlunsplit(server._replace(path=f"/{args.database}"))
        self.admin_url = urlunsplit(server._replace(scheme="postgresql", path="/postgres"))
        self.home = tempfile.TemporaryDirectory(prefix="bench-n8n-")
        self.env = n8n_environment(server, args.database, args.port, Path(self.home.name))
        self.targets: dict[float, tuple[subprocess.Popen, str]] = {}  # by delay in ms: the process, its URL
        self.processes: list[subprocess.Popen] = []  # in the order started
        LOG_DIR.mkdir(parents=True, exist_ok=True)

    # --- set-up ---

    def check_port(self) -> None:
        if port_taken(self.args.port):
            raise SystemExit(f"Something already listens on port {self.args.port} (an n8n left running?): give --port.")

    def prepare_database(self) -> None:
        if others := bench_module.create_database(self.admin_url, self.args.database):
            # Another n8n on this database (one left by a bench killed with SIGKILL) would also run the
            # published workflows, and its CPU would not be counted.
            found = ", ".join(f"pid {pid} ({name or 'no name'})" for pid, name in others)
            raise SystemExit(
                f"Other processes are connected to database {self.args.database}: {found}. Stop them (an n8n left "
                "by an interrupted bench: `ps aux | grep n8n`, then kill its pid), or give this run its own --database."
            )

    def start_targets(self) -> None:
        """bench_executions.py's two targets, answering at once and after 200 ms, on free ports."""
        for delay_ms in sorted({scenario.delay_ms for scenario in SCENARIOS.values()}):
            port = bench_module.free_port()
            log = LOG_DIR / f"n8n-target-{delay_ms:g}ms.log"
            command = [bench_module.PY, str(Path(bench_module.__file__).resolve()), "--serve-target", str(port)]
            process = bench_module.start([*command, str(delay_ms)], dict(os.environ), log)
            self.processes.append(process)
            bench_module.wait_for_log(log, "ready", process)
            self.targets[delay_ms] = (process, f"http://127.0.0.1:{port}")

    def import_workflows(self) -> None:
        """Writes the four workflows, imports them and publishes each (n8n activates them when it starts)."""
        folder = Path(self.home.name) / "workflows"
        folder.mkdir()
        for name, scenario in SCENARIOS.items():
            _process, target = self.targets[scenario.delay_ms]
            (folder / f"{name.lower()}.json").write_text(json.dumps(workflow(name, target, scenario.steps)))
        with CLI_LOG.open("wb") as log:
            self.n8n_cli(log, "import:workflow", "--separate", f"--input={folder}")
            for name in SCENARIOS:
                self.n8n_cli(log, "publish:workflow", f"--id={workflow_id(name)}")
        self.check_published()

    def check_published(self) -> None:
        """Exits unless each workflow's current version is its published one."""
        ids = [workflow_id(name) for name in SCENARIOS]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                'SELECT id FROM workflow_entity WHERE id = ANY(%s) AND "activeVersionId" = "versionId"', [ids]
            ).fetchall()
        if unpublished := sorted(set(ids) - {row[0] for row in rows}):
            raise SystemExit(f"n8n did not publish {', '.join(unpublished)}:\n{log_tail(CLI_LOG)}")

    def n8n_cli(self, log: BinaryIO, *arguments: str) -> None:
        """Runs an n8n command with n8n's configuration; its output goes to `log`."""
        done = subprocess.run([*self.n8n_command, *arguments], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise SystemExit(f"n8n {arguments[0]} failed ({done.returncode}):\n{log_tail(CLI_LOG)}")

    def start_n8n(self) -> subprocess.Popen:
        """Starts n8n and waits for its readiness; `n8n_start_s` is the time that took."""
        spawned = time.monotonic()
        n8n = bench_module.start([*self.n8n_command, "start"], self.env, N8N_LOG)
        self.processes.append(n8n)
        self.wait_for(n8n, lambda: is_ready(self.args.port), "readiness")
        self.n8n_start_s = time.monotonic() - spawned
        return n8n

    def wait_for_workflows(self, n8n: subprocess.Popen) -> None:
        """n8n is ready before it has activated the published workflows (their webhooks answer 404 meanwhile):
        waits until each webhook runs its workflow."""
        for name in SCENARIOS:
            self.wait_for(n8n, lambda name=name: webhook_works(self.args.port, name), f"webhook {webhook_path(name)}")

    def wait_for(self, n8n: subprocess.Popen, condition: Callable[[], bool], what: str) -> None:
        give_up = time.monotonic() + READY_TIMEOUT_S
        while not condition():
            if n8n.poll() is not None:
                raise SystemExit(f"n8n exited before its {what} answered:\n{log_tail(N8N_LOG)}")
            if time.monotonic() > give_up:
                raise SystemExit(f"n8n's {what} did not answer within {READY_TIMEOUT_S} s:\n{log_tail(N8N_LOG)}")
            time.sleep(0.05)

    # --- one scenario ---

    def empty_tables(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(EXECUTION_TABLES)} CASCADE")

    def snapshot(self, n8n: subprocess.Popen, target: subprocess.Popen) -> dict[str, dict[int, tuple[float, int]]]:
        """(CPU seconds, memory kB) of each process by class: RSS, but PSS for PostgreSQL's backends."""
        # n8n's backends: not this bench's (bench_module.backend_pids leaves out connections named bench-*).
        backends = bench_module.tree(bench_module.backend_pids(self.database_url, self.args.database))
        return {
            "n8n": bench_module.tree([n8n.pid]),
            "postgres": {pid: (cpu, bench_module.pss_kb(pid)) for pid, (cpu, _rss) in backends.items()},
            "target": bench_module.tree([target.pid]),
        }

    def saved_executions(self) -> dict[str, int]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return dict(conn.execute("SELECT status, count(*) FROM execution_entity GROUP BY status").fetchall())

    def run_scenario(self, name: str, n8n: subprocess.Popen) -> Result:
        """The clients run through the warm-up and the window; only the window is measured, while every client
        is busy."""
        scenario = SCENARIOS[name]
        target, _url = self.targets[scenario.delay_ms]
        self.empty_tables()
        load_before = os.getloadavg()
        stop = threading.Event()
        answers: list[list[Answer]] = [[] for _ in range(scenario.clients)]
        # Daemon threads: a bench stopped by Ctrl-C or SIGTERM stops n8n and exits without waiting for them.
        clients = [
            threading.Thread(
                target=client,
                args=(self.args.port, webhook_path(name), last_step(name), stop, answers[n]),
                daemon=True,
            )
            for n in range(scenario.clients)
        ]
        for thread in clients:
            thread.start()
        time.sleep(self.args.warmup)
        before = self.snapshot(n8n, target)
        client_cpu = time.process_time()
        window_start = time.monotonic()
        time.sleep(self.args.duration)
        after = self.snapshot(n8n, target)
        window_end = time.monotonic()
        cpu = {group: bench_module.cpu_delta(before[group], after[group]) for group in before}
        cpu["client"] = time.process_time() - client_cpu
        stop.set()
        for thread in clients:
            thread.join(timeout=CLIENT_TIMEOUT_S)
        return Result(
            scenario=name,
            answers=[answer for own in answers for answer in own if window_start <= answer[0] < window_end],
            elapsed=window_end - window_start,
            cpu=cpu,
            rss={group: bench_module.rss_mb(after[group]) for group in ("n8n", "postgres")},
            n8n_processes=len(after["n8n"]),
            pg_backends=len(after["postgres"]),
            saved=self.saved_executions(),
            load_before=load_before,
        )

    def summary(self, result: Result) -> dict:
        scenario = SCENARIOS[result.scenario]
        latencies = result.latencies
        errors: dict[str, int] = {}
        for _read, _latency, kind in result.answers:
            if kind != "ok":
                errors[kind] = errors.get(kind, 0) + 1
        return {
            "scenario": result.scenario,
            "steps": scenario.steps,
            "clients": scenario.clients,
            "target_delay_ms": scenario.delay_ms,
            "exec_per_s": round(len(latencies) / result.elapsed, 1),
            "succeeded": len(latencies),
            "p50_ms": round(bench_module.percentile(latencies, 0.5), 1),
            "p95_ms": round(bench_module.percentile(latencies, 0.95), 1),
            "cpu_ms_per_exec": round(result.per_exec("n8n", "postgres"), 2),
            "cpu_ms_by_class": {c: round(result.per_exec(c), 2) for c in ("n8n", "postgres", "target", "client")},
            "rss_mb": round(result.rss["n8n"], 1),
            "rss_mb_by_class": {c: round(mb, 1) for c, mb in result.rss.items()},
            "errors": sum(errors.values()),
            "errors_by_kind": errors,
            "n8n_version": self.version,
            "n8n_start_s": round(self.n8n_start_s, 2),
            "n8n_processes": result.n8n_processes,
            "pg_backends": result.pg_backends,
            "db_executions_by_status": result.saved,
            "duration_s": round(result.elapsed, 1),
            "cpus": os.cpu_count(),
            "load_before": [round(v, 2) for v in result.load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
        }

    # --- orchestration ---

    def run(self) -> list[dict]:
        self.check_port()
        self.prepare_database()
        self.start_targets()
        print(f"n8n {self.version}: importing and publishing the workflows ...", file=sys.stderr, flush=True)
        self.import_workflows()
        n8n = self.start_n8n()
        self.wait_for_workflows(n8n)
        summaries = []
        for name in self.args.scenarios:
            print(f"running {name} for {self.args.duration:g} s ...", file=sys.stderr, flush=True)
            summaries.append(self.summary(self.run_scenario(name, n8n)))
        return summaries

    def close(self) -> None:
        """Stops n8n, then the targets; a second Ctrl-C or a SIGTERM does not interrupt it."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(self.processes):
            bench_module.stop(process)
        self.home.cleanup()


def table(summaries: list[dict]) -> str:
    columns: list[bench_module.Column] = [
        *bench_module.LEADING_COLUMNS,
        ("CPU ms/exec", "cpu_ms_per_exec", "{:.1f}"),
        ("n8n", ("cpu_ms_by_class", "n8n"), "{:.1f}"),
        ("pg", ("cpu_ms_by_class", "postgres"), "{:.1f}"),
        ("RSS MB", "rss_mb", "{:.0f}"),
        ("errors", "errors", "{}"),
        ("load before", "load_before", "{0[0]:.1f}"),
    ]
    first = summaries[0]
    ready = (
        f"n8n {first['n8n_version']}, {first['n8n_processes']} process(es), ready {first['n8n_start_s']:.1f} s "
        f"after its spawn; {first['cpus']} CPUs"
    )
    return "\n".join([*bench_module.markdown_table(summaries, columns), "", ready])


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_module.add_scenario_arguments(parser, duration=12.0, warmup=3.0)
    parser.add_argument(
        "--n8n", default=os.environ.get("N8N_BIN"), help="n8n's node_modules/n8n/bin/n8n (default: $N8N_BIN)"
    )
    parser.add_argument("--database", default="n8n_bench", help="n8n's database on DATABASE_URL's server")
    parser.add_argument("--port", type=int, default=5678, help="n8n's HTTP port")
    return parser


def main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    if not (args.scenario or args.all):
        parser.error("choose --scenario S1|S2|S3|S4 or --all")
    args.scenarios = sorted(SCENARIOS) if args.all else [args.scenario]
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: n8n runs on Node.js.")
    version = n8n_version(args.n8n)
    if version != N8N_VERSION:
        print(f"warning: n8n {version}, not {N8N_VERSION}, the version the targets refer to", file=sys.stderr)
    signal.signal(signal.SIGTERM, bench_module.stop_on_sigterm)
    bench = N8nBench(args, node, version)
    try:
        summaries = bench.run()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        bench.close()
    bench_module.print_summaries(args, summaries, table)


if __name__ == "__main__":
    main()
