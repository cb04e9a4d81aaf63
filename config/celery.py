"""The Celery application shared by workers (`celery -A config worker`) and beat (`celery -A config beat`)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("connectors")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
