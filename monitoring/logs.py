"""Log records as JSON lines (LOG_FORMAT=json) or text, with the execution and workspace they are about.

`log_context` binds ids for the code below it (a context variable: per thread and per task);
`ContextFilter`, installed on the handler, copies them onto every record, so a line logged deep in the
engine still says which execution it belongs to. The redaction filter runs on the same handler, before
formatting, so JSON lines are scrubbed exactly as text lines are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

LOG_FORMATS = ("text", "json")
BOUND_FIELDS = ("execution_id", "workspace_id", "connector_id")

_bound: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Binds `ids` (execution_id, workspace_id, ...) to every record logged inside the block."""
    token = _bound.set({**_bound.get(), **{name: str(value) for name, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _bound.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, the bound ids, any
    `extra` fields, and `exc_info` (already scrubbed by the redaction filter) when there is one."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting for every process (web, worker, beat, commands)."""
    formatter = (
        {"()": "monitoring.logs.JsonFormatter", "fmt": "%(message)s"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    # Celery's two INFO lines per task ("Task ... received", "Task ... succeeded in ...s") cost a busy worker
    # about 4 % of its CPU and say less than the execution's own start and end lines; warnings, errors and
    # LOG_LEVEL=DEBUG still show. Celery decides whether to write them when the worker starts.
    task_lines = {"level": "WARNING" if level.upper() == "INFO" else level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "connectors.engine.redaction.RedactingLogFilter"},
            "context": {"()": "monitoring.logs.ContextFilter"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["context", "redact"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            "celery.worker.strategy": task_lines,
            "celery.app.trace": task_lines,
            # gunicorn's loggers write through the same handler (see config/gunicorn.conf.py).
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }
