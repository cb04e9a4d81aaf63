"""The Celery application shared by workers (`celery -A config worker`) and beat (`celery -A config beat`)."""

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("connectors")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class LocalFolderScheduler(PersistentScheduler):
    """Beat's default scheduler, creating the folder of its schedule file first: the file lives under .local/
    (settings), which a fresh clone does not have yet."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


@worker_ready.connect
@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    """The worker's tasks and Django are loaded: their objects are kept out of the collector's scans
    (core.startup). `worker_ready` in the process that runs the threads pool, `worker_process_init` in each
    child of a prefork pool."""
    from core.startup import freeze_startup_objects

    freeze_startup_objects()
