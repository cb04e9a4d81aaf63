import time
import pytest
from executions.models import Execution
from tests.fault.test_workers import connector, submit, finished  # noqa
from tests.fault.conftest import wait_until

@pytest.mark.parametrize("pool", ["threads", "prefork", "solo"])
def test_throughput(cluster, connector, target, pool, monkeypatch):
    real = cluster.worker
    import sys
    from tests.fault.conftest import Process
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}", "--concurrency=4", "-n", "w@fault", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    cluster._start(Process("w", args, cluster.env(), cluster.log_dir), "w@fault ready.")
    t = time.monotonic()
    ex = [submit(connector, n) for n in range(12)]
    wait_until(lambda: finished(*ex), timeout=60, what="done")
    print(pool, "took", time.monotonic() - t)
