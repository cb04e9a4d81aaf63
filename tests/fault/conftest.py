"""Fault-injection harness: a Redis, Celery workers and beat of our own, as real processes.

Every process here is started by the test that needs it, on a spare loopback port, and stopped (by its own
pid) when the test ends. Workers reach the database the test itself uses (pytest-django's test database, or
a throwaway PostgreSQL in test_database_outage.py) and may call 127.0.0.1 only.

Each test reports its figures (executions submitted under faults, completed, lost, steps sent twice) with
`record_figures`; the totals are printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings

from executions.runtime import reset_runner
from tests.local_server import LocalServer

BASE_DIR = Path(settings.BASE_DIR)
PROCESS_START_TIMEOUT = 30.0
FIGURES: Counter = Counter()


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("fault figures")
    for name in ("submitted", "completed", "lost", "checkpointed_steps_sent_twice", "in_flight_steps_sent_twice"):
        terminalreporter.write_line(f"{name}: {FIGURES[name]}")


def record_figures(
    *, submitted: int, completed: int, lost: int, checkpointed_twice: int, in_flight_twice: int = 0
) -> None:
    FIGURES.update(
        submitted=submitted,
        completed=completed,
        lost=lost,
        checkpointed_steps_sent_twice=checkpointed_twice,
        in_flight_steps_sent_twice=in_flight_twice,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> object:
    """Polls `predicate` until it returns something truthy; fails the test after `timeout` seconds."""
    give_up = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child process in its own session, logging to a file, stopped by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self._stopped = False
        self.popen = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def wait_for_log(self, text: str, *, timeout: float = PROCESS_START_TIMEOUT) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            return text in self.log

        try:
            wait_until(seen, timeout=timeout, what=f"{self.name} to log {text!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- {self.name} log ---\n{self.tail()}") from None

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Signals the main process, as docker, Kubernetes or systemd (KillMode=mixed) do on stop; with
        `group`, every process of it (pool children too), as a machine dying would."""
        if not self._stopped and self.popen.poll() is None:
            (os.killpg if group else os.kill)(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """Kills the process group (what is left of it) and reaps the child; once only, so a reused pid is
        never signalled."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._log.close()


class RedisServer:
    """A redis-server of our own on a spare port: no persistence, so FLUSHALL and restarts lose everything."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log_dir = log_dir
        self.process: Process | None = None

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--daemonize", "no"]
        self.process = Process(f"redis-{self.port}", args, dict(os.environ), self._log_dir)
        wait_until(self._answers, timeout=10, what="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False


@dataclass
class Cluster:
    """The environment shared by the processes of one test."""

    database_url: str
    broker_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker_url,
            CONNECTORS_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
            CONNECTORS_HEARTBEAT_SECONDS="1",
            CONNECTORS_REQUEUE_STALE_AFTER_SECONDS="3",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def worker(self, name: str, *, pool: str | None = None, concurrency: int = 4, **env: str) -> Process:
        """A worker on the pool `celery worker` uses without --pool (the settings' CELERY_WORKER_POOL:
        executions.worker_pool.ThreadPool), or on `pool` (e.g. "prefork")."""
        if pool is not None:
            env = {"CELERY_WORKER_POOL": pool, **env}
        args = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        args += [f"--concurrency={concurrency}", "-n", f"{name}@fault", "--loglevel=INFO"]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return self._start(Process(name, args, self.env(**env), self.log_dir), f"{name}@fault ready.")

    def beat(self, *, interval: int = 5, **env: str) -> Process:
        schedule = self.log_dir / "celerybeat-schedule"
        args = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "-s", str(schedule)]
        env = self.env(CONNECTORS_REQUEUE_INTERVAL_SECONDS=str(interval), **env)
        return self._start(Process("beat", args, env, self.log_dir), "beat: Starting...")

    def gunicorn(self, port: int) -> Process:
        args = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        args += ["--workers", "2", "--timeout", "30", "--graceful-timeout", "2"]
        return self._start(Process("gunicorn", args, self.env(), self.log_dir), "Booting worker")

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()

    def _start(self, process: Process, ready: str) -> Process:
        self.processes.append(process)  # stopped at the end even if it never gets ready
        process.wait_for_log(ready)
        return process

    def manage(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=BASE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


def database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def redis_server(log_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(log_dir).start()
    yield server
    server.stop()


@pytest.fixture
def target() -> Iterator[LocalServer]:
    """The API the connectors call: counts every request it receives."""
    with LocalServer() as server:
        yield server


def sent(server: LocalServer) -> Counter:
    """How many times each request (path with query) reached the target."""
    return Counter(request.path for request in server.requests)


@pytest.fixture
def in_process_broker(redis_server: RedisServer, settings) -> Iterator[str]:
    """Points this process's Celery producer at the test's Redis (the code under test enqueues with it)."""
    from config.celery import app

    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CONNECTORS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    reset_runner()
    _point_celery_at(app, redis_server.url)
    yield redis_server.url
    _point_celery_at(app, previous)
    reset_runner()


def _point_celery_at(app, url: str | None) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


@pytest.fixture
def cluster(transactional_db, in_process_broker: str, log_dir: Path) -> Iterator[Cluster]:
    """Processes started with `cluster.worker(...)` or `cluster.beat()` run against the test database; all
    are killed at the end, before pytest-django empties the tables."""
    from django.db import connection

    cluster = Cluster(database_url(connection.settings_dict), in_process_broker, log_dir)
    yield cluster
    cluster.stop_all()
