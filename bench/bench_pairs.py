"""Two versions of the service, one scenario, measured in alternating pairs: what every pass of
docs/performance.md does by hand to tell a change from the machine's drift.

Run by hand (never part of the test suite):

    python bench/bench_pairs.py --a REV --b REV [--pairs N] [--scenario S4] [--a-args ARGS] [--b-args ARGS]
        [-- BENCH_ARGS...]

`REV` is any git revision, checked out into a temporary worktree, or `.` for this checkout as it is
(uncommitted changes included). Each pair runs `bench/bench_executions.py --scenario S --json` of both
versions, one after the other: A then B in odd pairs, B then A in even ones, so that a machine slowing down or
speeding up within a pair weighs on both sides alike. Each version has its own database (`--database` with
`_a` or `_b` appended), as their migrations may differ, and its own code on `PYTHONPATH`, so that its web,
worker and migrations run it, not the installed checkout's. Arguments after `--` go to every bench run
(`--duration 12 --warmup 3` ...), `--a-args` and `--b-args` to one side's only: the same version under two
set-ups is `--a . --b . --b-args "--workers 2"`.

For each pair it prints B/A of executions/s, the service's CPU per execution, the worker's, and the execute
call's p95; at the end their mean, median and range, and in how many pairs B was higher, then one JSON object
with every run as its last line. A change is worth keeping when it wins in nearly every pair: on the
development machine one side's executions/s moves by up to a third from one run to the next.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
THIS_CHECKOUT = "."
STOPPING_SECONDS = 90  # how long an interrupted bench may take to stop its web, workers and target
RATIOS = {
    "exec_per_s": lambda run: run["exec_per_s"],
    "cpu_ms_per_exec": lambda run: run["cpu_ms_per_exec"],
    "worker_cpu_ms_per_exec": lambda run: run["cpu_ms_by_class"]["worker"],
    "execute_p95_ms": lambda run: run["execute_p95_ms"],
}


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The project's tree at `revision`: this checkout for `.`, else a temporary git worktree."""
    if revision == THIS_CHECKOUT:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="bench-pairs-") as parent:
        tree = Path(parent) / "tree"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, capture_output=True, text=True
        )
        if added.returncode != 0:
            raise SystemExit(f"Cannot check out {revision!r}: {added.stderr.strip()}. Give a commit, branch or tag.")
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def run_bench(tree: Path, scenario: str, database: str, bench_args: list[str]) -> dict:
    """One bench run of the version in `tree`; its JSON result."""
    command = [sys.executable, str(tree / "bench" / "bench_executions.py"), "--scenario", scenario, "--json"]
    command += ["--database", database, *bench_args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    with subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as bench:
        try:
            stdout, stderr = bench.communicate()
        except KeyboardInterrupt:
            # Ctrl-C reached the bench too: let it stop the services it started (subprocess.run would kill it at
            # once). Benches before bench_pairs.py existed then hang on their client threads: killed after that.
            try:
                bench.communicate(timeout=STOPPING_SECONDS)
            except subprocess.TimeoutExpired:
                bench.kill()
            raise
    lines = stdout.strip().splitlines()
    if bench.returncode != 0 or not lines:
        raise SystemExit(
            f"The bench of {tree} failed (exit {bench.returncode}):\n{stderr.strip()[-2000:]}\n"
            "Run it alone with the same arguments to see why."
        )
    return json.loads(lines[-1])


def ratios(a: dict, b: dict) -> dict[str, float]:
    return {name: value(b) / value(a) if value(a) else float("nan") for name, value in RATIOS.items()}


def summary(pairs: list[dict[str, float]]) -> list[str]:
    lines = []
    for name in RATIOS:
        values = [pair[name] for pair in pairs]
        higher = sum(value > 1 for value in values)
        lines.append(
            f"{name} B/A: mean {statistics.mean(values):.3f}, median {statistics.median(values):.3f}, "
            f"{min(values):.3f}-{max(values):.3f}, B higher in {higher} of {len(values)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="the version before: a git revision, or . for this checkout")
    parser.add_argument("--b", required=True, help="the version after: a git revision, or . for this checkout")
    parser.add_argument("--scenario", choices=("S1", "S2", "S3", "S4"), default="S4")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--database", default="connectors_bench", help="prefix of the two databases")
    parser.add_argument("--a-args", default="", help="more bench arguments for A's runs only, as one string")
    parser.add_argument("--b-args", default="", help="more bench arguments for B's runs only, as one string")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="after --: passed to every bench run")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    bench_args = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args

    runs: list[dict] = []
    pairs: list[dict[str, float]] = []
    with checkout(args.a) as tree_a, checkout(args.b) as tree_b:
        sides = {
            "A": (tree_a, f"{args.database}_a", [*bench_args, *shlex.split(args.a_args)]),
            "B": (tree_b, f"{args.database}_b", [*bench_args, *shlex.split(args.b_args)]),
        }
        for number in tqdm(range(1, args.pairs + 1), desc=f"{args.scenario} pairs", unit="pair"):
            order = ("A", "B") if number % 2 else ("B", "A")
            results = {}
            for side in order:
                tree, database, side_args = sides[side]
                results[side] = run_bench(tree, args.scenario, database, side_args)
                runs.append({"pair": number, "side": side, "result": results[side]})
            pairs.append(ratios(results["A"], results["B"]))
            shown = ", ".join(f"{name} {value:.3f}" for name, value in pairs[-1].items())
            tqdm.write(
                f"pair {number} ({''.join(order)}): A {results['A']['exec_per_s']}/s, "
                f"B {results['B']['exec_per_s']}/s; B/A {shown}"
            )
    for line in summary(pairs):
        print(line)
    print(json.dumps({"a": args.a, "b": args.b, "scenario": args.scenario, "ratios": pairs, "runs": runs}))


if __name__ == "__main__":
    main()
