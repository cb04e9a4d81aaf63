"""What a run's waits cost on threads and on one event loop, the concurrency model alone.

Run by hand (never part of the test suite); everything it talks to is on 127.0.0.1:

    python bench/bench_wait_model.py [--inflight N] [--delays MS ...] [--work N] [--seconds S] [--rounds R] [--json]

A worker process runs its executions on threads: each wait (an HTTP answer, a database round trip) lets go of
the GIL, and each resumption takes it back from the other threads. An event loop would resume its tasks
without that hand-off. This measures the difference with nothing else in the way: `--inflight` keep-alive
GETs in flight against `bench_executions.py`'s own target (a fixed delay per answer), each followed by `--work`
iterations of pure Python (a run's parsing, templating and bookkeeping between two waits), written once
with blocking sockets on that many threads and once with asyncio streams on one loop, the same minimal
HTTP/1.1 code in both. Each mode runs in a fresh interpreter, alternating, `--rounds` times per delay, and
reports requests/s and its process CPU per request. docs/performance.md, "Fourteenth pass", has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MODES = ("threads", "loop")


def request_bytes(n: int) -> bytes:
    return f"GET /step1?run={n} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n".encode()


def body_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("the target answered without a Content-Length")


def work(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def on_threads(port: int, inflight: int, iterations: int, until: float) -> int:
    done = [0] * inflight

    def client(n: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            buffer = b""
            while time.monotonic() < until:
                sock.sendall(request_bytes(n))
                while b"\r\n\r\n" not in buffer:
                    buffer += sock.recv(65536)
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = body_length(head)
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                buffer = buffer[length:]
                work(iterations)
                done[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(inflight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def on_loop(port: int, inflight: int, iterations: int, until: float) -> int:
    async def client(n: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.monotonic() < until:
            writer.write(request_bytes(n))
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(body_length(head))
            work(iterations)
            done += 1
        writer.close()
        await writer.wait_closed()
        return done

    async def clients() -> int:
        return sum(await asyncio.gather(*(client(n) for n in range(inflight))))

    return asyncio.run(clients())


def measure(mode: str, port: int, inflight: int, iterations: int, seconds: float) -> dict:
    """In this interpreter: one mode, for `seconds`."""
    run = on_threads if mode == "threads" else on_loop
    cpu, started = time.process_time(), time.monotonic()
    requests = run(port, inflight, iterations, started + seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - started
    return {"mode": mode, "requests": requests, "per_s": requests / wall, "cpu_ms_per_request": cpu * 1000 / requests}


def start_target(delay_ms: float) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, str(BENCH / "bench_executions.py"), "--serve-target", str(port), str(delay_ms)]
    target = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return target, port
        except OSError:
            time.sleep(0.1)
    target.kill()
    raise SystemExit(f"the target on port {port} did not start within 30 s: is bench/bench_executions.py runnable?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inflight", type=int, default=100, help="requests in flight (default 100)")
    parser.add_argument("--delays", type=float, nargs="+", default=[200, 20], help="target delays in ms")
    parser.add_argument("--work", type=int, default=20000, help="Python loop iterations after each answer")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two modes per delay")
    parser.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, port = args.child
        print(json.dumps(measure(mode, int(port), args.inflight, args.work, args.seconds)))
        return

    if not args.json:
        print("| target delay | round | mode | requests/s | CPU ms per request |")
        print("|---|---|---|---|---|")
    for delay in args.delays:
        target, port = start_target(delay)
        try:
            for round_number in range(1, args.rounds + 1):
                for mode in MODES:
                    child = [sys.executable, __file__, "--child", mode, str(port), "--inflight", str(args.inflight)]
                    child += ["--work", str(args.work), "--seconds", str(args.seconds)]
                    result = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
                    if args.json:
                        print(json.dumps({"delay_ms": delay, "round": round_number, **result}))
                    else:
                        print(
                            f"| {delay:g} ms | {round_number} | {mode} | {result['per_s']:.1f} "
                            f"| {result['cpu_ms_per_request']:.3f} |"
                        )
        finally:
            target.terminate()
            target.wait()


if __name__ == "__main__":
    main()
