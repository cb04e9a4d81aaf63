"""gunicorn settings for the web process: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`.

Binds to $PORT (default 8000) on $HOST (default 127.0.0.1: put a TLS proxy in front), runs
$WEB_CONCURRENCY workers (default one per core) of $GUNICORN_THREADS threads (default 8; `Prefer: wait`
requests hold one while they wait), and logs through the same formatter as every other process,
so LOG_FORMAT=json makes gunicorn's own lines JSON as well.
"""

import logging
import multiprocessing
import os

from gunicorn.glogging import Logger

from config.env import env_choice, env_int, env_str
from monitoring.logs import LOG_FORMATS, logging_config

bind = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 8000, minimum=1)}"
workers = env_int("WEB_CONCURRENCY", multiprocessing.cpu_count(), minimum=1)
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 8, minimum=1)
timeout = env_int("GUNICORN_TIMEOUT", 60, minimum=1)
graceful_timeout = 30
# Recycle workers now and then (a leak can never grow for ever); jitter spreads the restarts.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 10000, minimum=0)
max_requests_jitter = max_requests // 10
# Forwarded headers are believed only from these proxy addresses (see docs/deployment.md).
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")


class AccessLinesWhenWritten(Logger):
    """gunicorn's logger builds each request's access line (its atoms) even when the access logger drops it
    (LOG_LEVEL above INFO): 2 % of a web worker's CPU in the execute benchmark. Built only when written."""

    def access(self, resp, req, environ, request_time):
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = AccessLinesWhenWritten
logconfig_dict = logging_config(
    log_format=env_choice("LOG_FORMAT", LOG_FORMATS, "text"), level=env_str("LOG_LEVEL", "INFO")
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def post_worker_init(worker) -> None:
    """The application is loaded: its objects, with the URLconf and the views it imports (loaded now rather
    than by the first request), are kept out of the collector's scans (core.startup)."""
    from django.urls import get_resolver

    from core.startup import freeze_startup_objects

    get_resolver().url_patterns  # noqa: B018
    freeze_startup_objects()
