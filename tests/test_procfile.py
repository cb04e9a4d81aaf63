"""The Procfile states how production runs the processes (README, "Processes"). The deployment guide's copy of
it, its systemd unit for the worker and the benchmark's worker (bench/bench_executions.py) must run the worker
the same way, down to the environment its line sets (glibc's malloc tunables, read only at process start).
"""

import importlib.util
import re
import shlex
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEPLOYMENT_GUIDE = (PROJECT / "docs" / "deployment.md").read_text()


def procfile_lines() -> list[str]:
    lines = (PROJECT / "Procfile").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def worker_environment(line: str) -> dict[str, str]:
    """The NAME=value assignments that open a Procfile line, before its command."""
    assignments = {}
    for word in shlex.split(line.split(":", 1)[1]):
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word):
            break
        name, value = word.split("=", 1)
        assignments[name] = value
    return assignments


def procfile_worker_line() -> str:
    return next(line for line in procfile_lines() if line.startswith("worker:"))


def test_the_deployment_guide_copies_the_procfile_as_it_is():
    block = re.search(r"The `Procfile`:\n\n```\n(.*?)```", DEPLOYMENT_GUIDE, re.S)

    assert block is not None
    assert block.group(1).splitlines() == procfile_lines()


def test_the_worker_runs_without_glibcs_per_thread_malloc_caches():
    assert worker_environment(procfile_worker_line()) == {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}


def test_the_systemd_worker_unit_sets_the_procfile_workers_environment():
    unit = re.search(r"Description=Connectors Celery worker\n(.*?)```", DEPLOYMENT_GUIDE, re.S)

    assert unit is not None
    for name, value in worker_environment(procfile_worker_line()).items():
        assert f"\nEnvironment={name}={value}\n" in unit.group(1)


def test_the_benchmark_starts_its_worker_in_the_procfiles_environment(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_executions", PROJECT / "bench" / "bench_executions.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up while built
    spec.loader.exec_module(bench)

    procfile_environment = worker_environment(procfile_worker_line())

    assert procfile_environment == bench.WORKER_ENVIRONMENT
