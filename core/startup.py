"""What a long-running process does once it has started: its start-up objects kept out of the collector.

A web or worker process holds over a hundred thousand objects from its start (modules, classes, Django's,
DRF's and Celery's set-up, the URL resolver) that live as long as it does. Python's cyclic collector scans
every one of them at each full collection: 64-105 ms with the GIL held, once every several seconds under
load, during which every request and run of the process stands still (docs/performance.md, nineteenth pass).
`gc.freeze()` moves them to a permanent generation that no collection scans; what the process creates later
is collected as before. Called once per process by the gunicorn hook `post_worker_init`
(config/gunicorn.conf.py) and the worker's `worker_ready` and `worker_process_init` signals (config/celery.py).
"""

import gc


def freeze_startup_objects() -> int:
    """Collects the start-up's garbage, then freezes every object still alive; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
