"""PostgreSQL stopped for a few seconds under load: the API answers 503 JSON, /healthz says so, and once the
database is back the same web and worker processes carry on without a restart and without losing or
re-sending anything.

The database here is a throwaway PostgreSQL cluster of the test's own (initdb into a temporary directory, on
a spare loopback port), never the shared one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.fault.conftest import Cluster, RedisServer, free_port, record_figures, sent, wait_until
from tests.local_server import LocalServer, Reply

pytestmark = [pytest.mark.fault, pytest.mark.timeout(60)]

OUTAGE_SECONDS = 4.0


def _postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, run as `postgres` when we are root (initdb refuses
    root), listening on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="connectors-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/connectors"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "connectors")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as_owner, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self.bin_dir / program), *args], capture_output=True, timeout=60, check=True
        )


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed", pytrace=False)
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = ThrowawayPostgres(bin_dir)
    try:
        server.init()
        yield server
    finally:
        server.destroy()


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never through a proxy
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, self.base_url + path, json=body, headers=headers, timeout=15)


class Load(threading.Thread):
    """Submits an execution every 100 ms and keeps every answer: n -> status code."""

    def __init__(self, api: Api, connector_id: str) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.path = f"/api/v1/connectors/{connector_id}/execute"
        self.answers: dict[int, int] = {}
        self.bodies_not_json: list[int] = []
        self._done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self._done.wait(0.1):
            response = self.api.request("POST", self.path, {"input": {"n": n}})
            self.answers[n] = response.status_code
            if not response.headers.get("Content-Type", "").startswith("application/json"):
                self.bodies_not_json.append(n)
            n += 1

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=20)

    def accepted(self) -> set[int]:
        return {n for n, code in list(self.answers.items()) if code == 202}


def is_json_503(response: requests.Response) -> bool:
    return response.status_code == 503 and response.headers["Content-Type"].startswith("application/json")


def test_database_outage_under_load_gives_503_and_loses_nothing(postgres, log_dir):
    redis_server = RedisServer(log_dir).start()
    target = LocalServer().start()
    target.route("/one", Reply(delay=0.3))  # executions are mid-step when the database goes away
    cluster = Cluster(postgres.url, redis_server.url, log_dir)
    try:
        cluster.manage("migrate", "--noinput")
        web_port = free_port()
        web = cluster.gunicorn(web_port)
        worker = cluster.worker("worker")
        api = Api(f"http://127.0.0.1:{web_port}")
        credentials = {"email": "ops@example.com", "password": "Corr3ct-horse-battery"}
        assert api.request("POST", "/api/v1/auth/register", credentials).status_code == 201
        api.token = api.request("POST", "/api/v1/auth/token", credentials).json()["access"]
        steps = [
            {"name": "one", "url": f"{target.url}/one?n={{{{input.n}}}}", "retry": {"max_attempts": 1}},
            {"name": "two", "url": f"{target.url}/two?n={{{{input.n}}}}", "retry": {"max_attempts": 1}},
        ]
        created = api.request("POST", "/api/v1/connectors", {"name": "Outage", "steps": steps})
        assert created.status_code == 201, created.text
        load = Load(api, created.json()["id"])
        load.start()
        wait_until(lambda: len(load.accepted()) >= 10, timeout=20, what="10 executions accepted before the outage")

        postgres.stop()
        down_until = time.monotonic() + OUTAGE_SECONDS
        health = api.request("GET", "/healthz")
        listing = api.request("GET", "/api/v1/connectors")  # JWT authentication looks the user up
        cancel = api.request("POST", "/api/v1/executions/00000000-0000-0000-0000-000000000000/cancel")
        time.sleep(max(0.0, down_until - time.monotonic()))
        postgres.start()

        assert is_json_503(health)
        assert health.json() == {"status": "degraded", "database": "down", "broker": "ok"}
        assert is_json_503(listing)
        assert is_json_503(cancel)
        assert listing.json()["detail"] == "The database is unreachable; try again shortly."
        wait_until(lambda: api.request("GET", "/healthz").status_code == 200, timeout=20, what="/healthz 200")
        accepted_before = len(load.accepted())
        wait_until(lambda: len(load.accepted()) >= accepted_before + 10, timeout=20, what="10 more executions accepted")
        load.stop()

        with psycopg.connect(postgres.url, autocommit=True) as db:

            def rows() -> dict[int, tuple[str, int]]:
                query = "SELECT (input->>'n')::int, status, requeue_count FROM executions_execution"
                return {n: (status, requeues) for n, status, requeues in db.execute(query).fetchall()}

            wait_until(
                lambda: all(status not in ("queued", "running") for status, _ in rows().values()),
                timeout=45,
                what="every execution to finish after the outage",
                interval=0.5,
            )
            stored = rows()

        accepted = load.accepted()
        refused = [n for n, code in load.answers.items() if code == 503]
        completed = {n for n, (status, _) in stored.items() if status == "succeeded"}
        lost = accepted - completed
        counts = sent(target)
        sent_twice = sorted(path for path, times in counts.items() if times > 1)
        record_figures(
            submitted=len(accepted),
            completed=len(accepted & completed),
            lost=len(lost),
            checkpointed_twice=len(sent_twice),
        )

        assert set(load.answers.values()) <= {202, 503}, load.answers
        assert refused, "no request was made while the database was down"
        assert load.bodies_not_json == []
        assert lost == set()
        assert completed == set(stored)  # nothing else was left failed or cancelled either
        assert sent_twice == []
        assert set(counts) == {f"/{step}?n={n}" for n in stored for step in ("one", "two")}
        assert web.popen.poll() is None
        assert worker.popen.poll() is None
        assert web.log.count("Booting worker") == 2  # the same two web workers, never restarted
    finally:
        cluster.stop_all()
        target.stop()
        redis_server.stop()
