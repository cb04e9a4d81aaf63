"""`GET /healthz` (docs/api.md §13): the database, and the broker when one is configured."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("Health check: database unreachable", exc_info=True)
        return False


def _broker_state() -> str:
    if not settings.CELERY_BROKER_URL:
        return "embedded"
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
        logger.warning("Health check: broker unreachable", exc_info=True)
        return "down"


def healthz(request):
    database = "ok" if _database_ok() else "down"
    broker = _broker_state()
    healthy = database == "ok" and broker in ("ok", "embedded")
    body = {"status": "ok" if healthy else "degraded", "database": database, "broker": broker}
    return JsonResponse(body, status=200 if healthy else 503)
