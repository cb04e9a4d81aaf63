"""The Celery application shared by workers (`celery -A config worker`) and beat (`celery -A config beat`)."""

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

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
