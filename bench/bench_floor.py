"""The cost of the stack itself: CPU per request and per task that no code of ours can go below.

Run by hand (never part of the test suite); everything it talks to is on 127.0.0.1:

    python bench/bench_floor.py [--seconds S] [--tasks N] [--json]

It starts the production processes exactly as `bench_executions.py` does (same database, fixtures, gunicorn and
worker commands) and measures, each after a warm-up, the service's CPU (from /proc: gunicorn and worker
trees, their PostgreSQL backends, Redis) per unit of work:

* `404`: `GET` of an unknown API path with 8 closed-loop keep-alive clients: gunicorn, the middleware
  stack, URL resolution and a JSON error. Every request pays at least this.
* `read`: an authenticated `GET /api/v1/connectors/{id}` with the same clients: simplejwt, the throttles,
  the workspace's row-level-security transaction, one row and its serializer. A DRF endpoint's floor.
* `task`: `--tasks` no-op Celery tasks (`celery.accumulate`), queued first, then drained by one production
  worker process: the consumer, the threads pool, the late acknowledgement. Every execution pays this once.
* `claim`: as many `run_execution` tasks for ids that do not exist: the task above plus a run's claim, one
  statement that finds nothing.

Compare them with a one-step execution's service CPU, measured in the same hour
(`bench_executions.py --scenario S1`: 7.6-15.3 ms on the development machine, depending on the hour):
docs/performance.md, "Seventh pass" and "Eighth pass", does.

gunicorn's worker recycling is off here (GUNICORN_MAX_REQUESTS=0): a recycled worker's start-up would be
counted against the few thousand requests of one measurement.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import bench_executions as bench_module

CLIENTS = 8
SERVICE_CLASSES = ("web", "worker", "postgres", "redis")


def closed_loop(base: str, path: str, headers: Callable[[], dict], seconds: float, expect: int) -> int:
    """Sends GET `path` from CLIENTS keep-alive connections for `seconds`; returns the requests answered."""
    address = urlsplit(base)
    answered = [0] * CLIENTS
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while time.monotonic() < deadline and not failures:
            connection.request("GET", path, headers=headers())
            response = connection.getresponse()
            body = response.read()
            if response.status != expect:
                failures.append(f"GET {path} answered {response.status}: {body[:300]!r}")
            answered[n] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(failures[0])
    return sum(answered)


def drain(queue_length: Callable[[], int], publish: Callable[[int], None], count: int) -> int:
    """Queues `count` tasks, then waits until the worker has taken and acknowledged all of them."""
    for n in range(count):
        publish(n)
    give_up = time.monotonic() + 600
    while queue_length():
        if time.monotonic() > give_up:
            raise SystemExit("The worker did not drain the queue within 10 minutes: see its log in .local/bench")
        time.sleep(0.05)
    return count


class Floor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # The processes and fixtures of bench_executions.py, with its defaults.
        defaults = bench_module.argument_parser().parse_args(
            ["--database", args.database, "--redis-url", args.redis_url, "--workers", "1"]
        )
        self.bench = bench_module.Bench(defaults)
        self.bench.env["GUNICORN_MAX_REQUESTS"] = "0"

    def measure(self, name: str, what: str, work: Callable[[], int]) -> dict:
        before = self.bench.snapshot()
        started = time.monotonic()
        units = work()
        elapsed = time.monotonic() - started
        after = self.bench.snapshot()
        by_class = {
            process_class: round(bench_module.cpu_delta(before[process_class], after[process_class]) * 1000 / units, 3)
            for process_class in SERVICE_CLASSES
        }
        return {
            "name": name,
            "what": what,
            "units": units,
            "per_s": round(units / elapsed, 1),
            "cpu_ms": round(sum(by_class.values()), 3),
            "cpu_ms_by_class": by_class,
        }

    def run(self) -> list[dict]:
        import redis

        bench = self.bench
        bench.prepare_database()
        bench.setup_django()
        bench.create_fixtures()
        bench.flush_redis()
        base = bench.start_web()
        bench.start_workers()
        connector = bench.connector("http://127.0.0.1:9", 1)  # only read, never run
        workspace = str(bench.workspace.id)

        def authenticated() -> dict:
            return {"Authorization": f"Bearer {bench.bearer()}", "X-Workspace-ID": workspace}

        results = []
        read_path = f"/api/v1/connectors/{connector.id}"
        requests = [
            ("404", "GET of an unknown API path", "/api/v1/no-such-path", dict, 404),
            ("read", "GET /api/v1/connectors/{id}, authenticated", read_path, authenticated, 200),
        ]
        for name, what, path, headers, expect in requests:
            closed_loop(base, path, headers, self.args.warmup, expect)

            def loop(path=path, headers=headers, expect=expect) -> int:
                return closed_loop(base, path, headers, self.args.seconds, expect)

            results.append(self.measure(name, what, loop))

        from django.conf import settings

        from config.celery import app
        from executions.tasks import run_execution

        broker = redis.Redis.from_url(self.args.redis_url)
        queue = settings.CELERY_TASK_DEFAULT_QUEUE

        def queue_length() -> int:
            return broker.llen(queue) + broker.hlen("unacked")  # kombu's Redis transport keeps the unacked there

        tasks = [
            ("task", "a no-op Celery task", lambda n: app.send_task("celery.accumulate", args=(n,))),
            ("claim", "run_execution of an id that does not exist", lambda n: run_execution.delay(str(uuid.uuid4()))),
        ]
        for name, what, publish in tasks:
            drain(queue_length, publish, max(1, self.args.tasks // 10))

            def queued_and_drained(publish=publish) -> int:
                return drain(queue_length, publish, self.args.tasks)

            # The publishing happens in this process: only the worker's and Redis's CPU are counted.
            results.append(self.measure(name, what, queued_and_drained))
        return results

    def close(self) -> None:
        self.bench.close()


def table(results: list[dict]) -> str:
    lines = [
        "| floor | what | per second | service CPU ms | web | worker | PostgreSQL | Redis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        by = r["cpu_ms_by_class"]
        lines.append(
            f"| {r['name']} | {r['what']} | {r['per_s']:.0f} | {r['cpu_ms']:.2f} | {by['web']:.2f} | "
            f"{by['worker']:.2f} | {by['postgres']:.2f} | {by['redis']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds measured per request floor")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=3000, help="tasks queued per task floor")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON list last")
    parser.add_argument("--database", default="connectors_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, bench_module.stop_on_sigterm)
    floor = Floor(args)
    try:
        results = floor.run()
    finally:
        floor.close()
    print(table(results))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
