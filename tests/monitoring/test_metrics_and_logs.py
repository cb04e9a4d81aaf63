"""/metrics in-process, start-up errors for bad settings, the JSON log format and its redaction."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.engine.redaction import RedactingLogFilter, Redactor, redaction_scope
from monitoring.logs import ContextFilter, JsonFormatter, log_context

ROOT = Path(__file__).resolve().parents[2]


def manage_check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_metrics_answer_anyone_without_a_token(client, settings, db):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "connectors_executions",
        "connectors_executions_queued",
        "connectors_executions_running",
        "connectors_step_duration_seconds",
        "connectors_http_requests",
        "connectors_oldest_queued_execution_age_seconds",
        "connectors_executions_retry_scheduled",
        "connectors_queue_depth",
    } <= names


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Token right-token", "Bearer"])
def test_metrics_need_the_token_when_one_is_set(client, settings, db, header):
    settings.METRICS_TOKEN = "right-token"
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/metrics/", **extra)

    assert response.status_code == 401
    assert response.json() == {"detail": "A valid metrics token is required."}
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_with_the_token(client, settings, db):
    settings.METRICS_TOKEN = "right-token"

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer right-token").status_code == 200


def test_log_format_xml_stops_start_up_naming_the_allowed_values():
    result = manage_check(LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be one of text, json, got 'xml'" in result.stderr


def test_a_negative_retention_stops_start_up():
    result = manage_check(EXECUTION_RETENTION_DAYS="-1")

    assert result.returncode != 0
    assert "EXECUTION_RETENTION_DAYS must be at least 0, got -1" in result.stderr


def test_commands_log_json_lines_with_log_format_json(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import logging; logging.getLogger('ops.test').warning('hi %s', 1)",
        ],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert [(r["level"], r["logger"], r["message"]) for r in lines] == [("WARNING", "ops.test", "hi 1")]
    assert lines[0]["timestamp"].endswith("+00:00")


def record_through_the_handler(message: str, *args) -> dict:
    stream = __import__("io").StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(message)s"))
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingLogFilter())
    logger = logging.getLogger("ops.json.test")
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_json_lines_carry_the_bound_ids_and_are_redacted():
    redactor = Redactor()
    redactor.add("sk_live_top_secret_value")

    with redaction_scope(redactor), log_context(execution_id="e-1", workspace_id="w-1"):
        record = record_through_the_handler("calling with %s", "sk_live_top_secret_value")

    assert record["execution_id"] == "e-1"
    assert record["workspace_id"] == "w-1"
    assert "sk_live_top_secret_value" not in json.dumps(record)
    assert record["message"].startswith("calling with ")


def test_lines_outside_an_execution_have_no_ids():
    record = record_through_the_handler("plain")

    assert "execution_id" not in record
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "ops.json.test", "plain")
